"""Issue 13: tool calls a small model writes as text become tool calls -- over the Chat
Completions wire of the fake server, as llama.cpp / Ollama send them."""

from __future__ import annotations

import json

import pytest

from core.config import Settings
from core.models.base import ModelDone, ModelRequest, ModelTextDelta, ModelToolCall, UserText
from core.models.chat import ChatModel
from core.models.provider import build_model
from core.models.text_calls import TextToolCalls, parse_text_calls
from tests.models.fake_openai import FakeOpenAI
from tests.models.test_wire import ECHO, HELLO, WITH_TOOLS

FENCED = 'I will echo it.\n```json\n{"name": "echo", "arguments": {"text": "向日葵"}}\n```'
TAGGED = '<tool_call>\n{"name": "echo", "arguments": {"text": "x"}}\n</tool_call>'


def _pieces(text: str, size: int = 5) -> list[ModelTextDelta]:
    return [ModelTextDelta(text[i : i + size]) for i in range(0, len(text), size)]


async def _play(text: str, request: ModelRequest = WITH_TOOLS) -> list[object]:
    async with FakeOpenAI([_pieces(text)]) as fake:
        client = fake.client()
        model = ChatModel(client, "qwen2.5-coder:1.5b", text_tool_calls=True)
        events = [e async for e in model.stream(request)]
        await client.close()
    return events


async def test_fenced_json_block_is_a_tool_call() -> None:
    events = await _play(FENCED)
    text = "".join(e.text for e in events if isinstance(e, ModelTextDelta))
    assert text == "I will echo it.\n"
    (tc,) = [e for e in events if isinstance(e, ModelToolCall)]
    assert tc.name == "echo" and json.loads(tc.arguments) == {"text": "向日葵"}
    assert tc.call_id.startswith("call_text_")
    assert isinstance(events[-1], ModelDone)


async def test_tool_call_tags_are_a_tool_call() -> None:
    events = await _play(TAGGED)
    assert [type(e).__name__ for e in events] == ["ModelToolCall", "ModelDone"]


async def test_bare_json_message_is_a_tool_call() -> None:
    events = await _play('{"name": "echo", "arguments": {"text": "y"}}')
    assert [type(e).__name__ for e in events] == ["ModelToolCall", "ModelDone"]


@pytest.mark.parametrize(
    "text",
    [
        'Totals:\n```json\n{"revenue": "18.00"}\n```',
        "```python\nprint(1)\n```",
        '```json\n{"name": "unknown_tool", "arguments": {}}\n```',
        "Plain answer, ` and `` but no fence.",
    ],
    ids=["json-data", "code", "unknown-tool", "backticks"],
)
async def test_text_that_is_not_a_call_stays_text(text: str) -> None:
    events = await _play(text)
    assert "".join(e.text for e in events if isinstance(e, ModelTextDelta)) == text
    assert not any(isinstance(e, ModelToolCall) for e in events)


async def test_without_tools_text_passes_through() -> None:
    events = await _play(TAGGED, HELLO)
    assert "".join(e.text for e in events if isinstance(e, ModelTextDelta)) == TAGGED


def test_arguments_as_a_json_string_and_lists() -> None:
    text = '[{"name": "echo", "arguments": "{\\"text\\": \\"a\\"}"}, {"name": "echo", "parameters": {"text": "b"}}]'
    rest, calls = parse_text_calls(text, {"echo"})
    assert rest == "" and calls == [("echo", '{"text": "a"}'), ("echo", '{"text": "b"}')]


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({"openai_base_url": "http://localhost:11434/v1"}, True),
        ({"openai_base_url": "http://localhost:11434/v1", "text_tool_calls": "off"}, False),
        ({"openai_base_url": "https://api.openai.com/v1", "model_api": "chat"}, False),
        ({"openai_api_key": "k", "model_api": "chat", "text_tool_calls": "on"}, True),
        ({"openai_api_key": "k"}, False),
    ],
    ids=["local-auto", "local-off", "openai-chat", "forced-on", "responses"],
)
def test_auto_means_chat_servers_that_are_not_openai(env: dict[str, str], on: bool) -> None:
    settings = Settings(**env)  # type: ignore[arg-type]
    assert settings.reads_text_tool_calls is on
    model = build_model(settings)
    assert getattr(model, "text_tool_calls", False) is on


async def test_real_tool_calls_still_pass() -> None:
    from core.models.scripted import call

    async with FakeOpenAI([[call("echo", {"text": "z"}, "c9")]]) as fake:
        client = fake.client()
        model = TextToolCalls(ChatModel(client, "m"))
        request = ModelRequest(model="m", instructions="", items=(UserText("hi"),), tools=(ECHO,))
        events = [e async for e in model.stream(request)]
        await client.close()
    assert events[0] == ModelToolCall("c9", "echo", '{"text": "z"}')


async def test_aclose_still_closes_the_http_stream() -> None:
    import asyncio

    from core.models.scripted import Pause

    pause = Pause()
    async with FakeOpenAI([[ModelTextDelta("first"), pause, ModelTextDelta("never")]]) as fake:
        client = fake.client()
        stream = ChatModel(client, "m", text_tool_calls=True).stream(WITH_TOOLS)
        assert await anext(stream) == ModelTextDelta("first")
        await asyncio.wait_for(pause.reached.wait(), 10)
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(fake.disconnected.wait(), 10)
        await client.close()


async def test_wrapper_for_any_model() -> None:
    from core.models.scripted import ScriptedModel

    model = TextToolCalls(ScriptedModel([[ModelTextDelta(TAGGED)]]))
    events = [e async for e in model.stream(WITH_TOOLS)]
    assert [type(e).__name__ for e in events] == ["ModelToolCall", "ModelDone"]
