"""Fixtures: a fake Slack on 127.0.0.1 and the real bolt app connected to it by Socket Mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.models.scripted import ScriptedModel

from .fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack


class FakeClock:
    """A clock the throttles read; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def slack_settings(tmp_path: Path, fake: FakeSlack) -> Settings:
    s = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=fake.api_url,
        approve_writes=True,
    )
    s.ensure_dirs()
    return s


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


def _assistant() -> Any:
    """The built-in assistant; without the code interpreter while that package is absent."""
    from core.assistant import AssistantSpec, load_assistant

    spec = load_assistant()
    try:
        import core.tools.code_interpreter  # noqa: F401
    except ImportError:
        return AssistantSpec(
            spec.name, spec.instructions, tuple(t for t in spec.tools if t != "code_interpreter")
        )
    return spec


@dataclass
class Harness:
    """The bolt app over Socket Mode, its adapter, the bot and the fake server."""

    fake: FakeSlack
    adapter: Any
    handler: Any
    bot: Any
    model: ScriptedModel
    clock: FakeClock
    sent: int = 0

    async def deliver(self, kind: str, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """Send one envelope, then wait until the adapter has fully handled it."""
        self.sent += 1
        ack = await self.fake.send(kind, payload, **kw)
        await self.fake.wait_for(lambda: self.adapter.stats["received"] >= self.sent)
        await self.adapter.idle()
        return ack

    async def event(self, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.deliver("events_api", payload, **kw)


async def open_harness(
    settings: Settings, fake: FakeSlack, model: ScriptedModel, **adapter_kw: Any
) -> Harness:
    from bots.slack import SlackAdapter, socket_handler
    from core.app import Tallybot

    bot = await Tallybot.open(settings, model=model, assistant=_assistant())
    clock = FakeClock()
    adapter = SlackAdapter(bot, settings, clock=clock, **adapter_kw)
    handler = socket_handler(adapter, settings.slack_app_token or "")
    await handler.connect_async()
    await fake.connected.wait()
    return Harness(fake, adapter, handler, bot, model, clock)


async def close_harness(h: Harness) -> None:
    await h.adapter.idle()
    await h.handler.close_async()
    await h.adapter.aclose()
    await h.bot.close()


@pytest.fixture
async def slack(
    slack_settings: Settings, fake: FakeSlack, model: ScriptedModel
) -> AsyncIterator[Harness]:
    h = await open_harness(slack_settings, fake, model)
    try:
        yield h
    finally:
        await close_harness(h)
