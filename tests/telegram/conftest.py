"""Fixtures for the Telegram suite: the fake Bot API server and a running adapter against it.

Every test drives the real python-telegram-bot client: updates go into the fake server's
``getUpdates`` queue (or are POSTed to the webhook), and assertions read what the bot sent back
to the server.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import AIORateLimiter

from bots.telegram.adapter import TelegramAdapter
from core.app import Tallybot
from core.assistant import load_assistant
from core.config import Settings
from core.models.scripted import ScriptedModel
from tests.telegram.fake_api import TOKEN, FakeBotAPI

BILL_TOOLS = ("save_bill", "amend_bill", "get_bill", "list_bills")


class StepClock:
    """A clock that jumps a whole edit interval per reading, so every edit is allowed at once
    (the throttle is tested on its own in tests/test_render; here it must not slow tests)."""

    def __init__(self) -> None:
        self._ticks = itertools.count(step=10)

    def __call__(self) -> float:
        return float(next(self._ticks))


@dataclasses.dataclass
class Running:
    """A started adapter: the facade, the adapter, the fake server and the scripted model."""

    bot: Tallybot
    adapter: TelegramAdapter
    api: FakeBotAPI
    model: ScriptedModel | None


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
def make_settings(tmp_path: Path, api: FakeBotAPI) -> Callable[..., Settings]:
    """Settings pointed at the fake server; keyword overrides win."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "telegram_bot_token": TOKEN,
            "telegram_api_url": api.url,
            "approve_writes": True,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        settings.ensure_dirs()
        return settings

    return make


@pytest.fixture
def start(api: FakeBotAPI, make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """``async with start(turns, **settings) as run:`` -- a polling adapter on the fake server."""

    @asynccontextmanager
    async def _start(
        turns: Sequence[Any] | None = (),
        *,
        tools: Sequence[str] = BILL_TOOLS,
        adapter_options: dict[str, Any] | None = None,
        listen_port: int | None = None,
        **settings_overrides: Any,
    ) -> AsyncIterator[Running]:
        settings = make_settings(**settings_overrides)
        model = ScriptedModel(list(turns)) if turns is not None else None
        assistant = dataclasses.replace(load_assistant(), tools=tuple(tools))
        bot = await Tallybot.open(settings, model=model, assistant=assistant)
        try:
            adapter = TelegramAdapter(
                bot,
                settings,
                # No pacing between requests (the fake server has no limits), but 429s are
                # still retried after retry_after.
                rate_limiter=AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=3),
                clock=StepClock(),
                poll_timeout=1,
                **(adapter_options or {}),
            )
            await adapter.start(listen="127.0.0.1", port=listen_port or 0)
            try:
                yield Running(bot, adapter, api, model)
            finally:
                await adapter.stop()
        finally:
            await bot.close()

    return _start


def final_text(api: FakeBotAPI, chat_id: int, contains: str) -> Callable[[FakeBotAPI], Any]:
    """A ``wait_for`` predicate: some message in ``chat_id`` now reads with ``contains``."""

    def check(server: FakeBotAPI) -> Any:
        return [t for t in server.texts(chat_id) if contains in t]

    return check
