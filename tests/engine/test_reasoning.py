"""Issue 13, reasoning: kept as a run-step detail, never in the chat, passed back within a run
the way each API needs it -- over the real openai client and a fake server on 127.0.0.1."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI

from core.config import Settings
from core.domain import RunStatus, StepType
from core.events import RunFinished, TextDelta, Thinking
from core.models.base import ModelReasoningDelta, ModelTextDelta
from core.models.chat import ChatModel
from core.models.responses import ResponsesModel
from core.models.scripted import call
from core.store import Store
from tests.engine.helpers import Harness
from tests.models.fake_openai import FakeOpenAI

TURNS: list[Any] = [
    [
        ModelReasoningDelta("The user wants "),
        ModelReasoningDelta("an echo."),
        call("echo", {"text": "x"}, "c1"),
    ],
    [ModelReasoningDelta("Done; answer."), ModelTextDelta("Echoed x.")],
]


async def _run(
    settings: Settings, store: Store, wire: str, **extra: Any
) -> tuple[Harness, FakeOpenAI, list[Any]]:
    settings = settings.model_copy(update=extra)
    async with FakeOpenAI(TURNS) as fake:
        client = AsyncOpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
        model_name = "gpt-5-mini" if wire == "responses" else "deepseek-reasoner"
        model = (ResponsesModel if wire == "responses" else ChatModel)(client, model_name)
        harness = Harness(settings, store, model)
        events = await harness.send("echo x")
        await client.close()
    return harness, fake, events


async def test_chat_reasoning_content_goes_back_on_the_assistant_message(
    settings: Settings, store: Store
) -> None:
    harness, fake, events = await _run(settings, store, "chat")
    # Never in the chat: only the answer is text; "thinking" is a status, once per turn.
    texts = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert texts == "Echoed x."
    assert sum(isinstance(e, Thinking) for e in events) == 2
    assert isinstance(events[-1], RunFinished) and events[-1].status == RunStatus.COMPLETED
    # DeepSeek thinking mode: the tool-call turn's reasoning is sent back with its calls.
    second = fake.requests[1]["messages"]
    assistant = [m for m in second if m["role"] == "assistant"]
    assert assistant == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "echo", "arguments": '{"text": "x"}'},
                }
            ],
            "reasoning_content": "The user wants an echo.",
        }
    ]
    # Kept as a run-step detail (what `runs show` prints).
    run = await store.get_run(events[-1].run_id)
    by_type = {s.type: s for s in run.steps}
    assert by_type[StepType.TOOL_CALLS].details["reasoning"] == "The user wants an echo."
    assert by_type[StepType.MESSAGE_CREATION].details["reasoning"] == "Done; answer."
    assert by_type[StepType.MESSAGE_CREATION].text == "Echoed x."


async def test_chat_reasoning_of_earlier_runs_is_not_sent(settings: Settings, store: Store) -> None:
    harness, fake, events = await _run(settings, store, "chat")
    fake2 = FakeOpenAI([[ModelTextDelta("ok")]])
    async with fake2:
        client = AsyncOpenAI(api_key="test", base_url=fake2.base_url, max_retries=0)
        harness.engine.model = ChatModel(client, "deepseek-reasoner")
        await harness.send("again")
        await client.close()
    messages = fake2.requests[0]["messages"]
    assert not any("reasoning_content" in m for m in messages)
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


async def test_responses_reasoning_items_go_back_encrypted_and_stateless(
    settings: Settings, store: Store
) -> None:
    harness, fake, events = await _run(settings, store, "responses", reasoning_effort="low")
    first, second = fake.requests
    assert first["store"] is False
    assert first["include"] == ["reasoning.encrypted_content"]
    assert first["reasoning"] == {"effort": "low", "summary": "auto"}
    inputs = second["input"]
    kinds = [i.get("type") or i.get("role") for i in inputs]
    assert kinds == ["user", "reasoning", "function_call", "function_call_output"]
    reasoning = inputs[1]
    assert reasoning["encrypted_content"] == "enc:The user wants an echo."
    assert reasoning["id"].startswith("rs_")
    assert "status" not in reasoning
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echoed x."
    run = await store.get_run(events[-1].run_id)
    calls_step = next(s for s in run.steps if s.type == StepType.TOOL_CALLS)
    assert calls_step.details["reasoning"] == "The user wants an echo."
    assert calls_step.details["reasoning_items"][0]["encrypted_content"].startswith("enc:")


async def test_reasoning_effort_is_sent_on_chat_and_left_out_when_unset(
    settings: Settings, store: Store
) -> None:
    _, fake, _ = await _run(settings, store, "chat", reasoning_effort="high")
    assert fake.requests[0]["reasoning_effort"] == "high"
    _, fake, _ = await _run(settings, store, "chat")
    assert "reasoning_effort" not in fake.requests[0]


async def test_non_reasoning_responses_model_gets_no_include(
    settings: Settings, store: Store
) -> None:
    async with FakeOpenAI([[ModelTextDelta("hi")]]) as fake:
        client = AsyncOpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
        harness = Harness(settings, store, ResponsesModel(client, "gpt-4.1"))
        await harness.send("hi")
        await client.close()
    assert "include" not in fake.requests[0] and "reasoning" not in fake.requests[0]
