"""The one aiohttp application of ``tallybot serve``.

    app = build_app(bot, health, slack=adapter, telegram=tg, subapps=[("/v1", v1_app)])

Routes: ``POST /slack/events`` (bolt: events, ``/tally`` and buttons; signatures checked by
bolt), ``POST /telegram/webhook`` (the ``X-Telegram-Bot-Api-Secret-Token`` header checked),
``GET /healthz`` (the process answers), ``GET /readyz`` (:class:`core.health.Health`: 503
with the reasons when not ready), ``GET /metrics`` (Prometheus text).

Both inbound endpoints answer only once the message is stored (:mod:`core.receipt`): 200
when it is (or when there was nothing to store), 503 when the store refused it, so the
platform retries instead of the message being lost. Another part of tallybot adds its own
routes as a sub-application: one more ``(prefix, web.Application)`` in ``subapps`` (or
:data:`SUBAPPS`, for code that cannot reach the call).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.metrics import CONTENT_TYPE
from core.receipt import Receipt

if TYPE_CHECKING:
    from bots.slack.adapter import SlackAdapter
    from bots.telegram.adapter import TelegramAdapter
    from core.app import Tallybot
    from core.health import Health

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
TELEGRAM_PATH = "/telegram/webhook"
SLACK_ACK_WITHIN = 2.5  # Slack retries a delivery not answered within 3 s
TELEGRAM_ACK_WITHIN = 20.0

SubApp = tuple[str, web.Application]
# Builders of sub-applications mounted on every app build_app makes: ``(prefix, build(bot))``.
SUBAPPS: list[tuple[str, Callable[[Tallybot], web.Application]]] = []


def build_app(
    bot: Tallybot,
    health: Health,
    *,
    slack: SlackAdapter | None = None,
    telegram: TelegramAdapter | None = None,
    subapps: Sequence[SubApp] = (),
) -> web.Application:
    """The serve app: health, metrics, the channels' endpoints and any sub-applications."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(health))
    app.router.add_get("/metrics", _metrics(bot))
    if slack is not None:
        app.router.add_post(SLACK_PATH, _slack_events(slack))
    if telegram is not None:
        app.router.add_post(TELEGRAM_PATH, _telegram_webhook(telegram))
    for prefix, sub in [*subapps, *((p, build(bot)) for p, build in SUBAPPS)]:
        app.add_subapp(prefix, sub)
    return app


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def _readyz(health: Health) -> Callable[[web.Request], Any]:
    async def readyz(_: web.Request) -> web.Response:
        ready, checks = await health.ready()
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    return readyz


def _metrics(bot: Tallybot) -> Callable[[web.Request], Any]:
    async def metrics(_: web.Request) -> web.Response:
        service = bot.service
        if service is None:
            return web.Response(status=404)
        m = service.metrics
        try:
            m.set_run_counts(await bot.store.run_counts())
        except Exception:  # the database may be what is broken; the rest still renders
            log.warning("run counts unavailable for /metrics", exc_info=True)
        m.queue_depth.set(service.admission.waiting)
        m.running.set(service.admission.running)
        m.sandbox_pool.set(bot.settings.sandbox_pool_size)
        return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE})

    return metrics


def _slack_events(adapter: SlackAdapter) -> Callable[[web.Request], Any]:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        with Receipt() as receipt:
            bolt_response = await adapter.app.async_dispatch(bolt_request)
        if bolt_response.status == 200 and not await receipt.wait(SLACK_ACK_WITHIN):
            return web.Response(status=503, text="storage unavailable; retry later")
        return await to_aiohttp_response(bolt_response)

    return events


def _telegram_webhook(adapter: TelegramAdapter) -> Callable[[web.Request], Any]:
    import asyncio

    async def webhook(request: web.Request) -> web.Response:
        if not adapter.secret_ok(request.headers.get("X-Telegram-Bot-Api-Secret-Token")):
            return web.Response(status=403, text="bad secret token")
        try:
            data = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(data, dict) or "update_id" not in data:
            return web.Response(status=400, text="not a Telegram update")
        with Receipt() as receipt:
            task = asyncio.ensure_future(adapter.feed(data))
            receipt.track(task)
        service = adapter.tallybot.service
        if service is not None:  # cancelled by the service when shutdown runs late
            service.track(task)
        if not await receipt.wait(TELEGRAM_ACK_WITHIN):
            return web.Response(status=503, text="storage unavailable; retry later")
        return web.Response(text="ok")

    return webhook
