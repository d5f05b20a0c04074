"""The engine suite runs against every model backend: the in-process scripted model, and the
two wire adapters (Responses, Chat Completions) talking to a real SSE server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest

from core.config import Settings
from core.models.scripted import ScriptedModel
from core.store import Store
from tests.engine.helpers import Harness

BACKENDS = ("scripted", "responses", "chat")

MakeHarness = Callable[[Sequence[Any]], "Any"]


@pytest.fixture(params=BACKENDS)
async def make_harness(
    request: pytest.FixtureRequest, settings: Settings, store: Store
) -> AsyncIterator[Callable[[Sequence[Any]], Any]]:
    """``await make_harness(turns)`` → a Harness whose model plays ``turns``."""
    backend = request.param
    async with AsyncExitStack() as stack:

        async def make(turns: Sequence[Any]) -> Harness:
            if backend == "scripted":
                return Harness(settings, store, ScriptedModel(list(turns)))
            from openai import AsyncOpenAI

            from core.models.chat import ChatModel
            from core.models.responses import ResponsesModel
            from tests.models.fake_openai import FakeOpenAI

            fake = await stack.enter_async_context(FakeOpenAI(list(turns)))
            client = AsyncOpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
            stack.push_async_callback(client.close)
            model = (ResponsesModel if backend == "responses" else ChatModel)(client, "test-model")
            harness = Harness(settings, store, model)
            harness.fake = fake  # type: ignore[attr-defined]
            return harness

        yield make
