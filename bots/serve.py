"""``tallybot serve [--port N] [--host H]``: every configured channel in one process.

Slack: Socket Mode with ``SLACK_APP_TOKEN``, else HTTP events at ``/slack/events`` (needs
``SLACK_SIGNING_SECRET``). Telegram: the webhook at ``/telegram/webhook`` when
``TELEGRAM_WEBHOOK_URL`` is set (``TELEGRAM_WEBHOOK_SECRET`` required), else long polling --
refused when another live replica already polls the same bot, because Telegram allows one
poller per token. One aiohttp app (:func:`bots.web.build_app`) also serves ``/healthz``,
``/readyz`` and ``/metrics``.

SIGTERM / SIGINT: ``/readyz`` turns 503 and new events are refused (503, so the platform
retries elsewhere), running runs get ``TALLYBOT_SHUTDOWN_GRACE`` seconds to finish, the rest
is left for the next process (or another replica) to recover.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, TallybotError

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from bots.web import SubApp
    from core.app import Tallybot
    from core.config import Settings
    from core.health import Health

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CLOSE_WITHIN = 5.0  # seconds each shutdown step past the grace period may take


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the ``tallybot`` sub-command parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run every configured channel in one process, with /healthz /readyz /metrics",
        description="Run Slack and/or Telegram (whichever is configured) in one process on "
        "one HTTP port. Safe to run as several replicas on one PostgreSQL. See docs/deploy.md.",
    )
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Entry point for ``tallybot serve``; returns the exit code."""
    from core.config import load_settings

    try:
        settings = load_settings()
    except Exception as exc:  # pydantic ValidationError: a bad TALLYBOT_* value
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not (settings.slack_bot_token or settings.telegram_bot_token):
        print(
            "error: no channel configured: set SLACK_BOT_TOKEN (Slack) and/or "
            "TELEGRAM_BOT_TOKEN (Telegram)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        import asyncio  # here, not at the top: ``tallybot --help`` does not need it

        asyncio.run(serve(settings, host=args.host, port=args.port, freeze_heap=True))
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except TallybotError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    return EXIT_OK


async def serve(
    settings: Settings,
    *,
    host: str = "0.0.0.0",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    subapps: tuple[SubApp, ...] = (),
    expiry_interval: float = 5.0,
    freeze_heap: bool = False,
) -> None:
    """Open tallybot, start the channels and the HTTP app, run until SIGTERM or ``stop``.
    ``freeze_heap``: this process only serves (the CLI), see :func:`gc.freeze`."""
    import asyncio

    from core.health import SqliteClaim, sqlite_path

    stop = stop or asyncio.Event()
    handled = _on_signals(stop)
    path = sqlite_path(settings.db_url)
    claim = SqliteClaim(path) if path is not None else None
    if claim is not None:
        claim.acquire()  # a second process on the same SQLite file stops here
    try:
        await _serve(settings, host, port, stop, subapps, expiry_interval, freeze_heap)
    finally:
        if claim is not None:
            claim.release()
        loop = asyncio.get_running_loop()
        for sig in handled:
            loop.remove_signal_handler(sig)


def _on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    import asyncio

    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    # A process that will not stop says where it is: SIGUSR1 writes every thread's stack to
    # stderr (works even when the event loop is stuck), SIGUSR2 logs every asyncio task's.
    with contextlib.suppress(AttributeError, RuntimeError, ValueError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGUSR2, _log_tasks)
        handled.append(signal.SIGUSR2)
    return handled


def _log_tasks() -> None:
    import asyncio

    for task in asyncio.all_tasks():
        lines: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(lines) < 40:  # the whole await chain, not one frame
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                lines.append(
                    f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
                )
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        log.warning("task %r:\n%s", task, "\n".join(lines))


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event,
    subapps: tuple[SubApp, ...],
    expiry_interval: float,
    freeze_heap: bool,
) -> None:
    import asyncio

    from aiohttp import web

    from core.app import Tallybot
    from core.health import Health
    from core.service import Service

    bot = await Tallybot.open(settings, recover=False)
    service = bot.service = Service(bot)
    health = Health(bot)
    service.store_problem = health.file_problem
    closers: list[Any] = []
    runner: web.AppRunner | None = None
    try:
        slack = await _start_slack(bot, settings, health, closers)
        telegram = await _start_telegram(bot, settings, health, service, closers)
        health.add_channel("accepting", lambda: service.accepting)
        app = _app(bot, health, slack, telegram, subapps)
        # Handlers end once the service has cancelled the work they wait for; a few seconds
        # is plenty (aiohttp's default would wait 60 s for each one).
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=CLOSE_WITHIN)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        await service.start()
        bot.start_background(expiry_interval)
        if freeze_heap:
            # What start-up loaded lives as long as the process: keep it out of every
            # collection, including the last one at exit, which otherwise scans the whole
            # heap (~9 s on a busy machine, after the shutdown itself is done).
            gc.freeze()
        log.warning(
            "tallybot serve: listening on http://%s:%s (replica %s)", host, port, service.replica.id
        )
        await stop.wait()
        log.warning("tallybot serve: stopping; runs get %ss to finish", settings.shutdown_grace)
        service.accepting = False
        if not await service.stop(settings.shutdown_grace, cancel_within=CLOSE_WITHIN):
            log.warning("runs still going after the grace period are left for recovery")
    finally:
        if runner is not None:
            await runner.cleanup()
        for close in reversed(closers):
            with contextlib.suppress(Exception):  # TimeoutError too: exit matters more
                await asyncio.wait_for(close(), CLOSE_WITHIN)
        await bot.close()


def _app(
    bot: Tallybot,
    health: Health,
    slack: Any,
    telegram: Any,
    subapps: tuple[SubApp, ...],
) -> web.Application:
    from aiohttp import web

    from bots.assistants_api.app import build_api
    from bots.web import build_app

    # The Assistants API (docs/assistants-api.md) is served beside the channels.
    subapps = (*subapps, ("/v1", build_api(bot)))
    app = build_app(
        bot,
        health,
        slack=slack if slack is not None and slack.http else None,
        telegram=telegram if telegram is not None and telegram.webhook_mode else None,
        subapps=subapps,
    )
    service = bot.service

    @web.middleware
    async def refuse_when_stopping(request: web.Request, handler: Any) -> web.StreamResponse:
        # After SIGTERM, inbound events go to another replica (the platform retries a 503).
        if service is not None and not service.accepting and request.method == "POST":
            return web.Response(status=503, text="shutting down")
        return await handler(request)

    app.middlewares.append(refuse_when_stopping)
    return app


async def _start_slack(
    bot: Tallybot, settings: Settings, health: Health, closers: list[Any]
) -> Any:
    if not settings.slack_bot_token:
        return None
    from bots.slack.adapter import SlackAdapter
    from bots.slack.server import check_settings, socket_handler

    mode = check_settings(settings)
    adapter = SlackAdapter(bot, settings, process_before_response=mode == "http")
    adapter.http = mode == "http"  # type: ignore[attr-defined]
    assert bot.service is not None
    bot.service.on_deliver("slack", adapter.deliver)
    closers.append(adapter.aclose)
    if mode == "socket":
        handler = socket_handler(adapter, settings.slack_app_token or "")
        await handler.connect_async()
        closers.append(handler.close_async)
        client = handler.client
        # is_connected() is a coroutine in slack_sdk's aiohttp client; the session's state is
        # what it reads.
        health.add_channel(
            "slack",
            lambda: bool(
                not client.closed
                and client.current_session is not None
                and not client.current_session.closed
            ),
        )
    else:
        health.add_channel("slack", lambda: True)
    return adapter


async def _start_telegram(
    bot: Tallybot, settings: Settings, health: Health, service: Any, closers: list[Any]
) -> Any:
    if not settings.telegram_bot_token:
        return None
    from bots.telegram.adapter import TelegramAdapter

    adapter = TelegramAdapter(bot, settings)
    service.on_deliver("telegram", adapter.deliver)
    closers.append(adapter.stop)
    if adapter.webhook_mode:
        await adapter.start_hosted(set_webhook=True)
        health.add_channel("telegram", lambda: adapter.application.running)
        return adapter
    # Telegram hands each update to one poller; two would steal each other's updates.
    name = f"{adapter.source}:poller"
    if await service.replica.try_hold(name) is None:
        raise ConfigError(
            "another live tallybot replica is already long-polling this Telegram bot. "
            "With several replicas use the webhook: set TELEGRAM_WEBHOOK_URL and "
            "TELEGRAM_WEBHOOK_SECRET (see docs/deploy.md)."
        )
    service.replica.start()  # keep the poller lease alive from now on
    await adapter.start()
    updater = adapter.application.updater
    health.add_channel("telegram", lambda: bool(updater and updater.running))
    return adapter
