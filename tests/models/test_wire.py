"""Both wire adapters against a real SSE server on 127.0.0.1, through the real openai client."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from core.config import Settings
from core.errors import (
    BrokenStream,
    ModelAuthError,
    ModelBadRequest,
    ModelError,
    ModelServerError,
    ModelTimeout,
    RateLimited,
)
from core.models.base import (
    AssistantText,
    FunctionCall,
    FunctionOutput,
    Model,
    ModelDone,
    ModelEvent,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
    ToolSpec,
    Usage,
    UserText,
)
from core.models.chat import ChatModel
from core.models.errors import convert_error, parse_retry_after
from core.models.provider import build_client, build_model
from core.models.responses import ResponsesModel
from core.models.scripted import Pause, ScriptedModel, call, text
from tests.models.fake_openai import FakeOpenAI, Fault, RawStream

ECHO = ToolSpec(
    name="echo",
    description="Echo the text back.",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}},
)
HELLO = ModelRequest(model="test-model", instructions="Be brief.", items=(UserText("hi"),))
WITH_TOOLS = ModelRequest(
    model="test-model", instructions="Be brief.", items=(UserText("hi"),), tools=(ECHO,)
)
PATHS = {ResponsesModel: "/v1/responses", ChatModel: "/v1/chat/completions"}


@pytest.fixture(params=[ResponsesModel, ChatModel], ids=["responses", "chat"])
def adapter(request: pytest.FixtureRequest) -> type[ResponsesModel] | type[ChatModel]:
    return request.param


async def play(
    adapter: type[ResponsesModel] | type[ChatModel],
    turns: list[Any],
    request: ModelRequest = HELLO,
    **client_kwargs: Any,
) -> tuple[list[ModelEvent], FakeOpenAI]:
    """Run one turn of ``adapter`` against a fresh fake server; return events and the fake."""
    async with FakeOpenAI(turns) as fake:
        client = fake.client(**client_kwargs)
        try:
            events = [e async for e in adapter(client, "test-model").stream(request)]
        finally:
            await client.close()
    return events, fake


async def fails(
    adapter: type[ResponsesModel] | type[ChatModel],
    turns: list[Any],
    **client_kwargs: Any,
) -> tuple[ModelError, list[ModelEvent], FakeOpenAI]:
    """Like :func:`play` for a turn that must fail: the error, the events before it, the fake."""
    seen: list[ModelEvent] = []
    async with FakeOpenAI(turns) as fake:
        client = fake.client(**client_kwargs)
        try:
            with pytest.raises(ModelError) as info:
                async for event in adapter(client, "test-model").stream(WITH_TOOLS):
                    seen.append(event)
        finally:
            await client.close()
    return info.value, seen, fake


# --- happy paths -------------------------------------------------------------------------------


async def test_text_streams_as_deltas_then_done_with_usage(adapter: type[ResponsesModel]) -> None:
    events, fake = await play(
        adapter, [[ModelTextDelta("Hello"), ModelTextDelta(", 世界"), ModelDone(Usage(11, 3))]]
    )
    assert events == [ModelTextDelta("Hello"), ModelTextDelta(", 世界"), ModelDone(Usage(11, 3))]
    assert [r.path for r in fake.requests] == [PATHS[adapter]]
    assert fake.requests[0]["stream"] is True


async def test_one_tool_call_arrives_complete(adapter: type[ResponsesModel]) -> None:
    events, _ = await play(adapter, [[call("echo", {"text": "向日葵 x2"}, "call_1")]], WITH_TOOLS)
    assert events[:-1] == [
        ModelToolCall("call_1", "echo", json.dumps({"text": "向日葵 x2"}, ensure_ascii=False))
    ]
    assert isinstance(events[-1], ModelDone)


async def test_several_tool_calls_in_one_turn_keep_order_and_arguments(
    adapter: type[ResponsesModel],
) -> None:
    turn = [
        ModelTextDelta("Let me check."),
        call("echo", {"text": "first, a longer argument that streams in pieces"}, "c1"),
        call("echo", {"text": "second"}, "c2"),
        call("echo", {}, "c3"),
    ]
    events, _ = await play(adapter, [turn], WITH_TOOLS)
    assert events[:-1] == turn
    assert isinstance(events[-1], ModelDone)


async def test_chat_without_usage_chunk_reports_zero_usage() -> None:
    # Ollama and llama.cpp ignore stream_options.include_usage.
    async with FakeOpenAI([text("ok")], send_usage=False) as fake:
        client = fake.client()
        events = [e async for e in ChatModel(client, "m").stream(HELLO)]
        await client.close()
    assert events == [ModelTextDelta("ok"), ModelDone(Usage(0, 0))]


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": choices,
    }


async def test_chat_tolerates_local_server_quirks() -> None:
    """No call ids, no indexes, the name repeated on every chunk, "stop" despite tool calls,
    an empty-choices chunk first (Azure's filter results) and no usage at all."""
    quirky = RawStream(
        _chunk(None),
        _chunk({"role": "assistant", "content": "Checking"}),
        _chunk({"tool_calls": [{"function": {"name": "echo", "arguments": '{"text":'}}]}),
        _chunk({"tool_calls": [{"function": {"name": "echo", "arguments": ' "a"}'}}]}),
        _chunk({"tool_calls": [{"id": "second", "function": {"name": "echo", "arguments": "{}"}}]}),
        _chunk({}, "stop"),
        "[DONE]",
    )
    events, _ = await play(ChatModel, [quirky], WITH_TOOLS)
    assert events[0] == ModelTextDelta("Checking")
    first, second = events[1], events[2]
    assert isinstance(first, ModelToolCall) and isinstance(second, ModelToolCall)
    assert (first.name, first.arguments) == ("echo", '{"text": "a"}')
    assert first.call_id  # invented, so the output can be paired with the call
    assert second == ModelToolCall("second", "echo", "{}")
    assert events[3:] == [ModelDone(Usage(0, 0))]


async def test_chat_usage_may_arrive_after_finish_reason() -> None:
    late_usage = RawStream(
        _chunk({"content": "ok"}),
        _chunk({}, "stop"),
        {**_chunk(None), "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}},
        "[DONE]",
    )
    events, _ = await play(ChatModel, [late_usage])
    assert events == [ModelTextDelta("ok"), ModelDone(Usage(7, 2))]


async def test_responses_text_only_in_the_finished_item_is_not_lost() -> None:
    """A compatible server that sends no output_text deltas, only the finished message."""
    message = {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "whole answer", "annotations": []}],
    }
    usage = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    quiet = RawStream(
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": message},
        ),
        (
            "response.completed",
            {"type": "response.completed", "response": {"id": "r", "usage": usage}},
        ),
    )
    events, _ = await play(ResponsesModel, [quiet])
    assert events == [ModelTextDelta("whole answer"), ModelDone(Usage(5, 2))]


# --- request mapping ---------------------------------------------------------------------------

HISTORY = ModelRequest(
    model="gpt-test",
    instructions="You analyse flower sales.",
    items=(
        UserText("Total for today?"),
        AssistantText("Send me the CSV."),
        UserText("Here it is."),
        FunctionCall("c1", "echo", '{"text": "a"}'),
        FunctionCall("c2", "echo", '{"text": "b"}'),
        FunctionOutput("c1", '{"echo": "a"}'),
        FunctionOutput("c2", '{"echo": "b"}'),
    ),
    tools=(ECHO,),
)


async def test_responses_request_carries_the_whole_history_statelessly() -> None:
    _, fake = await play(ResponsesModel, [text("ok")], HISTORY)
    body = fake.requests[0]
    assert body["model"] == "gpt-test"
    assert body["store"] is False
    assert "previous_response_id" not in body
    assert body["instructions"] == "You analyse flower sales."
    assert body["input"] == [
        {"role": "user", "content": "Total for today?"},
        {"role": "assistant", "content": "Send me the CSV."},
        {"role": "user", "content": "Here it is."},
        {"type": "function_call", "call_id": "c1", "name": "echo", "arguments": '{"text": "a"}'},
        {"type": "function_call", "call_id": "c2", "name": "echo", "arguments": '{"text": "b"}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"echo": "a"}'},
        {"type": "function_call_output", "call_id": "c2", "output": '{"echo": "b"}'},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "echo",
            "description": "Echo the text back.",
            "parameters": ECHO.parameters,
            "strict": False,
        }
    ]


async def test_chat_request_groups_calls_into_one_assistant_message() -> None:
    _, fake = await play(ChatModel, [text("ok")], HISTORY)
    body = fake.requests[0]
    assert body["model"] == "gpt-test"
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "You analyse flower sales."},
        {"role": "user", "content": "Total for today?"},
        {"role": "assistant", "content": "Send me the CSV."},
        {"role": "user", "content": "Here it is."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "echo", "arguments": '{"text": "a"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "echo", "arguments": '{"text": "b"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"echo": "a"}'},
        {"role": "tool", "tool_call_id": "c2", "content": '{"echo": "b"}'},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "echo",
                "description": "Echo the text back.",
                "parameters": ECHO.parameters,
            },
        }
    ]


async def test_no_tools_means_no_tools_key(adapter: type[ResponsesModel]) -> None:
    # Some servers reject "tools": [].
    _, fake = await play(adapter, [text("ok")], HELLO)
    assert "tools" not in fake.requests[0]


async def test_a_later_turn_replays_the_tool_round_trip(adapter: type[ResponsesModel]) -> None:
    """The calls a turn produced, sent back with their outputs, reach the server intact."""
    async with FakeOpenAI([[call("echo", {"text": "x"}, "c9")], text("done")]) as fake:
        client = fake.client()
        model = adapter(client, "test-model")
        first = [e async for e in model.stream(WITH_TOOLS)]
        made = first[0]
        assert isinstance(made, ModelToolCall)
        follow_up = ModelRequest(
            model="test-model",
            instructions="",
            items=(
                UserText("hi"),
                FunctionCall(made.call_id, made.name, made.arguments),
                FunctionOutput(made.call_id, '{"echo": "x"}'),
            ),
            tools=(ECHO,),
        )
        second = [e async for e in model.stream(follow_up)]
        await client.close()
    assert second[0] == ModelTextDelta("done")
    sent = json.dumps(fake.requests[1])
    assert '"c9"' in sent and '{\\"echo\\": \\"x\\"}' in sent
    # Empty instructions send no system message / instructions at all.
    assert "instructions" not in fake.requests[1]
    assert all(m.get("role") != "system" for m in fake.requests[1].get("messages", []))


# --- HTTP errors -------------------------------------------------------------------------------


async def test_429_after_the_sdk_retries_is_rate_limited_with_retry_after(
    adapter: type[ResponsesModel],
) -> None:
    error, _, fake = await fails(
        adapter,
        [Fault.status(429, retry_after=0.05), Fault.status(429, retry_after=0.05)],
        max_retries=1,
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == pytest.approx(0.05)
    assert "429" in error.message and "Rate limit reached" in error.message
    assert error.localized("zh")  # a person sees it
    assert len(fake.requests) == 2  # the SDK retried once, honouring retry-after


async def test_retry_after_ms_wins_over_retry_after(adapter: type[ResponsesModel]) -> None:
    error, _, _ = await fails(adapter, [Fault.status(429, retry_after=30, retry_after_ms=1500)])
    assert isinstance(error, RateLimited)
    assert error.retry_after == pytest.approx(1.5)


async def test_500_is_a_server_error(adapter: type[ResponsesModel]) -> None:
    error, _, fake = await fails(adapter, [Fault.status(500)])
    assert isinstance(error, ModelServerError)
    assert "500" in error.message
    assert error.localized("zh") != error.message
    assert len(fake.requests) == 1


async def test_a_500_the_sdk_retries_past_is_invisible(adapter: type[ResponsesModel]) -> None:
    events, fake = await play(
        adapter, [Fault.status(503, retry_after_ms=10), text("recovered")], max_retries=1
    )
    assert events[0] == ModelTextDelta("recovered")
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, ModelAuthError), (403, ModelAuthError), (400, ModelBadRequest), (404, ModelBadRequest)],
)
async def test_client_errors(
    adapter: type[ResponsesModel], status: int, expected: type[ModelError]
) -> None:
    error, _, fake = await fails(adapter, [Fault.status(status)], max_retries=2)
    assert type(error) is expected
    assert str(status) in error.message
    assert error.zh and error.localized("zh") == error.zh
    assert len(fake.requests) == 1  # 4xx is never retried


async def test_read_timeout_is_model_timeout(adapter: type[ResponsesModel]) -> None:
    pause = Pause()  # never released: the server goes quiet mid-stream
    error, seen, _ = await fails(adapter, [[ModelTextDelta("a"), pause]], timeout=0.5)
    assert isinstance(error, ModelTimeout)
    assert seen == [ModelTextDelta("a")]


async def test_nothing_listening_is_broken_stream(adapter: type[ResponsesModel]) -> None:
    async with FakeOpenAI() as fake:
        base_url = fake.base_url
    # The server is gone: the port now refuses connections.
    client = openai.AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0)
    with pytest.raises(BrokenStream) as info:
        [e async for e in adapter(client, "m").stream(HELLO)]
    await client.close()
    assert "connect" in info.value.message.lower()


# --- broken streams ----------------------------------------------------------------------------


async def test_disconnect_mid_stream_is_broken_stream(adapter: type[ResponsesModel]) -> None:
    turn = [ModelTextDelta("one"), ModelTextDelta("two"), ModelTextDelta("three")]
    # Enough events to get the first delta out on both wires, not enough to finish.
    cut = 5 if adapter is ResponsesModel else 2
    error, seen, _ = await fails(adapter, [Fault.disconnect_after(cut, turn)])
    assert isinstance(error, BrokenStream)
    assert seen == [ModelTextDelta("one")]
    assert isinstance(error.__cause__, openai.APIConnectionError)


async def test_stream_without_its_final_event_is_broken(adapter: type[ResponsesModel]) -> None:
    error, seen, _ = await fails(adapter, [Fault.truncate([call("echo", {"text": "x"}, "c1")])])
    assert isinstance(error, BrokenStream)
    # Chat only knows arguments are complete at finish_reason, so nothing half-done escapes.
    if adapter is ChatModel:
        assert seen == []


async def test_malformed_chunk_is_broken_stream(adapter: type[ResponsesModel]) -> None:
    error, _, _ = await fails(adapter, [Fault.malformed(after=2)])
    assert isinstance(error, BrokenStream)
    assert "malformed" in error.message
    assert isinstance(error.__cause__, json.JSONDecodeError)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.failed("server_error"), ModelServerError),
        (Fault.failed("rate_limit_exceeded", "Slow down."), RateLimited),
        (Fault.error_event("invalid_prompt", "Bad prompt."), ModelBadRequest),
        # An answer cut at the token limit is no longer an error (issue 13): see
        # tests/models/test_reasoning_wire.py::test_length_keeps_the_text_so_far.
        (Fault.incomplete("content_filter"), ModelBadRequest),
    ],
    ids=["failed", "failed-rate-limit", "error-event", "content-filter"],
)
async def test_errors_reported_inside_the_stream(
    adapter: type[ResponsesModel], fault: Fault, expected: type[ModelError]
) -> None:
    error, seen, _ = await fails(adapter, [fault])
    assert type(error) is expected
    assert seen == [ModelTextDelta("Hello"), ModelTextDelta(", "), ModelTextDelta("world")]


# --- cancel ------------------------------------------------------------------------------------


async def test_aclose_closes_the_http_stream(adapter: type[ResponsesModel]) -> None:
    pause = Pause()
    async with FakeOpenAI([[ModelTextDelta("first"), pause, ModelTextDelta("never")]]) as fake:
        client = fake.client()
        stream = adapter(client, "test-model").stream(HELLO)
        assert isinstance(stream, AsyncIterator)
        assert await anext(stream) == ModelTextDelta("first")
        await asyncio.wait_for(pause.reached.wait(), 10)
        await stream.aclose()  # type: ignore[attr-defined]
        # A bound, not a timing assertion: without the close the server never sees EOF.
        await asyncio.wait_for(fake.disconnected.wait(), 10)
        assert fake.disconnects == 1
        assert not pause.event.is_set()
        await client.close()


async def test_cancelling_a_pending_read_closes_the_http_stream(
    adapter: type[ResponsesModel],
) -> None:
    """The engine cancels the task awaiting the next event, then acloses the iterator."""
    pause = Pause()
    async with FakeOpenAI([[ModelTextDelta("first"), pause]]) as fake:
        client = fake.client()
        stream = adapter(client, "test-model").stream(HELLO)
        assert await anext(stream) == ModelTextDelta("first")
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(pause.reached.wait(), 10)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(fake.disconnected.wait(), 10)
        await client.close()


# --- provider ----------------------------------------------------------------------------------


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"openai_api_key": "sk-test"}, ResponsesModel),
        ({"openai_base_url": "https://api.openai.com/v1", "openai_api_key": "k"}, ResponsesModel),
        ({"openai_base_url": "http://127.0.0.1:11434/v1"}, ChatModel),
        ({"openai_base_url": "https://api.deepseek.com/v1", "openai_api_key": "k"}, ChatModel),
        ({"openai_base_url": "http://127.0.0.1:8000/v1", "model_api": "responses"}, ResponsesModel),
        ({"openai_api_key": "k", "model_api": "chat"}, ChatModel),
    ],
)
def test_build_model_picks_the_wire_from_settings(
    values: dict[str, Any], expected: type[Model]
) -> None:
    model = build_model(_settings(model="gpt-test", **values))
    assert type(model) is expected
    assert model.name == "gpt-test"


def test_model_api_env_var_overrides_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("TALLYBOT_MODEL_API", "responses")
    assert type(build_model(_settings())) is ResponsesModel


def test_build_client_uses_settings_and_a_placeholder_key() -> None:
    client = build_client(
        _settings(
            openai_base_url="http://127.0.0.1:11434/v1", model_timeout=7.5, model_max_retries=4
        )
    )
    assert client.api_key == "not-needed"
    assert str(client.base_url) == "http://127.0.0.1:11434/v1/"
    assert client.timeout == 7.5
    assert client.max_retries == 4


def test_scripted_model_from_settings(tmp_path: Path) -> None:
    script = tmp_path / "demo.json"
    script.write_text(json.dumps({"turns": [[{"text": "hi"}]]}), encoding="utf-8")
    model = build_model(_settings(model=f"scripted:{script}"))
    assert isinstance(model, ScriptedModel)
    assert model.turns == [[ModelTextDelta("hi")]]


def test_retry_after_header_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < (parse_retry_after({"retry-after": later}) or 0) <= 60


def test_convert_error_passes_model_errors_through_and_wraps_the_unknown() -> None:
    mine = ModelServerError("x")
    assert convert_error(mine) is mine
    other = convert_error(RuntimeError("boom"))
    assert type(other) is ModelError and "boom" in other.message
