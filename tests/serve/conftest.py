"""An in-process serve app: Tallybot + Service + Slack over HTTP on 127.0.0.1, fake Slack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bots.slack.adapter import SlackAdapter
from bots.web import build_app
from core.app import Tallybot
from core.config import Settings
from core.health import Health
from core.models.scripted import ScriptedModel
from core.service import Service
from tests.slack.conftest import _assistant
from tests.slack.fake_slack import BOT_TOKEN, FakeSlack

from .harness import SLACK_SECRET, slack_headers


@dataclass
class Served:
    """The app's base URL and its parts."""

    url: str
    bot: Tallybot
    service: Service
    adapter: SlackAdapter
    model: ScriptedModel
    fake: FakeSlack
    health: Health

    async def post_event(self, payload: dict[str, Any]) -> int:
        body = json.dumps(payload)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.url + "/slack/events", data=body.encode(), headers=slack_headers(body)
            ) as resp:
                status = resp.status
        await self.adapter.idle()
        return status

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + path) as resp:
                return resp.status, await resp.text()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def serve_settings(tmp_path: Path, fake: FakeSlack) -> Settings:
    s = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SLACK_SECRET,
        slack_api_url=fake.api_url,
        lease_seconds=5,
    )
    s.ensure_dirs()
    return s


@pytest.fixture
async def served(serve_settings: Settings, fake: FakeSlack) -> AsyncIterator[Served]:
    model = ScriptedModel()
    bot = await Tallybot.open(serve_settings, model=model, assistant=_assistant(), recover=False)
    service = bot.service = Service(bot)
    adapter = SlackAdapter(bot, serve_settings, process_before_response=True)
    service.on_deliver("slack", adapter.deliver)
    health = Health(bot)
    service.store_problem = health.file_problem
    runner = web.AppRunner(build_app(bot, health, slack=adapter))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    await service.start(interval=3600)
    try:
        yield Served(f"http://127.0.0.1:{port}", bot, service, adapter, model, fake, health)
    finally:
        await adapter.idle()
        await service.stop(1)
        await runner.cleanup()
        await adapter.aclose()
        await bot.close()
