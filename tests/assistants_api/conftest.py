"""The Assistants API on 127.0.0.1 (a random port) over a Tallybot with a scripted model.

``api_server(turns)`` starts it; tests talk to it with the real openai SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from openai import AsyncOpenAI

from bots.assistants_api.app import build_api
from core.app import Tallybot
from core.config import Settings
from core.models.scripted import ScriptedModel

KEY_A = "sk-tb-test-key-a"
KEY_B = "sk-tb-test-key-b"


@dataclass
class Server:
    """A running API: its base URL, the bot behind it and the scripted model."""

    base_url: str
    bot: Tallybot
    model: ScriptedModel
    stack: AsyncExitStack

    def client(self, key: str = KEY_A, **kwargs: Any) -> AsyncOpenAI:
        """An SDK client for ``key`` (no retries: a test sees the first answer)."""
        client = AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0, **kwargs)
        self.stack.push_async_callback(client.close)
        return client


@pytest.fixture
async def api_server(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """``await api_server(turns, **settings overrides)`` -> :class:`Server`."""
    async with AsyncExitStack() as stack:

        async def start(
            turns: Sequence[Any] = (), *, wire: bool = False, **overrides: Any
        ) -> Server:
            """``wire=True``: the model is the settings' own (e.g. a FakeOpenAI server)."""
            values = {"api_keys": [KEY_A, KEY_B], "sandbox_timeout": 20.0, **overrides}
            configured = settings.model_copy(update=values)
            model = ScriptedModel(list(turns), name="scripted-test")
            bot = await Tallybot.open(configured, model=None if wire else model, channel="api")
            stack.push_async_callback(bot.close)
            root = web.Application()
            root.add_subapp("/v1", build_api(bot))
            runner = web.AppRunner(root)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return Server(f"http://127.0.0.1:{port}/v1", bot, model, stack)

        yield start
