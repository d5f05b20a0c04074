"""``tallybot telegram [--port N] [--listen ADDR]``: run the Telegram bot until interrupted.

Long polling by default; a webhook server on ``--port`` when TELEGRAM_WEBHOOK_URL is set
(TELEGRAM_WEBHOOK_SECRET required). bots/cli.py calls :func:`add_parser` and :func:`run`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING

from core.errors import TallybotError

if TYPE_CHECKING:
    import asyncio

    from core.config import Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``telegram`` on the ``tallybot`` command line."""
    parser = subparsers.add_parser(
        "telegram",
        help="run the Telegram bot (long polling, or a webhook when TELEGRAM_WEBHOOK_URL is set)",
        description=(
            "Run the Telegram bot. Needs TELEGRAM_BOT_TOKEN. TELEGRAM_API_URL points at another "
            "Bot API server (e.g. a local telegram-bot-api). With TELEGRAM_WEBHOOK_URL set, "
            "serves a webhook on --port and checks TELEGRAM_WEBHOOK_SECRET."
        ),
    )
    parser.add_argument("--port", type=int, default=8443, help="webhook port (default 8443)")
    parser.add_argument(
        "--listen", default="0.0.0.0", help="webhook listen address (default 0.0.0.0)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Entry point for ``tallybot telegram``; returns the exit code."""
    from core.config import load_settings

    try:
        settings = load_settings()
    except Exception as exc:  # pydantic ValidationError: a bad TALLYBOT_* value
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.telegram_bot_token:
        print(
            "error: TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather and put its token "
            "in the environment or .env.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        import asyncio  # here, not at the top: ``tallybot --help`` does not need it

        asyncio.run(serve(settings, listen=args.listen, port=args.port))
    except TallybotError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    return EXIT_OK


async def serve(
    settings: Settings,
    *,
    listen: str = "0.0.0.0",
    port: int = 8443,
    stop: asyncio.Event | None = None,
) -> None:
    """Open the bot, start the adapter, and run until SIGINT/SIGTERM (or ``stop`` is set)."""
    import asyncio

    from bots.telegram.adapter import TelegramAdapter
    from core.app import Tallybot

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    bot = await Tallybot.open(settings, channel="telegram")
    try:
        adapter = TelegramAdapter(bot, settings)
        await adapter.start(listen=listen, port=port)
        bot.start_background()
        mode = f"webhook on port {port}" if adapter.webhook_mode else "long polling"
        log.warning("tallybot telegram: running (%s); Ctrl-C to stop", mode)
        try:
            await stop.wait()
        finally:
            await adapter.stop()
    finally:
        await bot.close()
        for sig in handled:
            loop.remove_signal_handler(sig)
