"""Running the Slack app: Socket Mode when an app token is set, else HTTP on a port.

HTTP mode serves bolt on ``POST /slack/events`` (events, ``/tally`` and button clicks share
the one Request URL); bolt checks every request's signature and timestamp and refuses bad or
stale ones with 401 before any listener runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from core.app import Tallybot
from core.config import Settings
from core.errors import ConfigError

from .adapter import SlackAdapter

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def check_settings(settings: Settings) -> str:
    """``socket`` or ``http``, or a ConfigError that says which variable is missing."""
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the xoxb-… token of the Slack app)")
    if settings.slack_app_token:
        if not settings.slack_app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        return "socket"
    if not settings.slack_signing_secret:
        raise ConfigError(
            "set SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET for HTTP mode"
        )
    return "http"


def http_app(adapter: SlackAdapter, path: str = EVENTS_PATH) -> web.Application:
    """An aiohttp application serving the bolt app at ``path`` plus ``GET /healthz``."""

    async def events(request: web.Request) -> web.Response:
        bolt_response = await adapter.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(path, events)
    app.router.add_get("/healthz", health)
    return app


def socket_handler(adapter: SlackAdapter, app_token: str) -> AsyncSocketModeHandler:
    """Socket Mode over the adapter's own client, so ``SLACK_API_URL`` applies to it too."""
    return AsyncSocketModeHandler(adapter.app, app_token, web_client=adapter.client)


async def serve(
    settings: Settings,
    *,
    host: str = "0.0.0.0",
    port: int = 3000,
    path: str = EVENTS_PATH,
    expiry_interval: float = 5.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Open tallybot and serve Slack until ``stop`` is set (or the task is cancelled)."""
    mode = check_settings(settings)
    stop = stop or asyncio.Event()
    bot = await Tallybot.open(settings, channel="slack")
    adapter = SlackAdapter(bot, settings)
    bot.start_background(expiry_interval)
    try:
        if mode == "socket":
            handler = socket_handler(adapter, settings.slack_app_token or "")
            await handler.connect_async()
            log.info("Slack Socket Mode connected")
            try:
                await stop.wait()
            finally:
                await handler.close_async()
        else:
            runner = web.AppRunner(http_app(adapter, path))
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            log.info("Slack HTTP mode listening on http://%s:%s%s", host, port, path)
            try:
                await stop.wait()
            finally:
                await runner.cleanup()
    finally:
        with contextlib.suppress(Exception):
            await adapter.aclose()
        await bot.close()
