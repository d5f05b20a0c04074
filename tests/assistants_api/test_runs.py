"""Runs through the openai SDK: client-side functions (polling and streaming), cancel,
expiry, 409 and 429, run steps, and the same run in `tallybot runs` / bills."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from core.models.base import FunctionOutput, ModelTextDelta
from core.models.scripted import Pause, call, text

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_total_revovered",
        "description": "保存恢复人数",
        "parameters": {
            "type": "object",
            "properties": {"totalRecovered": {"type": "number", "description": "总恢复人数"}},
            "required": ["totalRecovered"],
        },
    },
}


def _outputs(request) -> list[str]:
    return [i.output for i in request.items if isinstance(i, FunctionOutput)]


async def _setup(client, content="各个国家恢复人数占比是多少？"):
    assistant = await client.beta.assistants.create(
        model="gpt-3.5-turbo-1106", instructions="You are a data analyst.", tools=[FUNCTION]
    )
    thread = await client.beta.threads.create(messages=[{"role": "user", "content": content}])
    return assistant, thread


async def test_client_function_waits_in_requires_action_then_completes(api_server) -> None:
    def answer(request):
        assert _outputs(request) == ["success"]  # the client's output reached the model
        return text("Recovered: 123.")

    server = await api_server([[call("get_total_revovered", {"totalRecovered": 123})], answer])
    client = server.client()
    assistant, thread = await _setup(client)
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "requires_action" and run.started_at
    assert run.expires_at and run.required_action.type == "submit_tool_outputs"
    (tool_call,) = run.required_action.submit_tool_outputs.tool_calls
    assert tool_call.function.name == "get_total_revovered"
    assert json.loads(tool_call.function.arguments) == {"totalRecovered": 123}
    # The instructions of the assistant reached the model, with the tool's own schema.
    request = server.model.requests[0]
    assert "You are a data analyst." in request.instructions
    assert [t.name for t in request.tools] == ["get_total_revovered"]
    run = await client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": tool_call.id, "output": "success"}],
        poll_interval_ms=20,
    )
    assert run.status == "completed" and run.completed_at and run.required_action is None
    assert run.usage is not None and run.usage.total_tokens >= 0
    messages = await client.beta.threads.messages.list(thread.id)
    assert messages.data[0].content[0].text.value == "Recovered: 123."
    assert messages.data[0].assistant_id == assistant.id and messages.data[0].run_id == run.id
    steps = await client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    kinds = [s.step_details.type for s in steps.data]
    assert kinds == ["tool_calls", "message_creation"]
    fn = steps.data[0].step_details.tool_calls[0].function
    assert fn.name == "get_total_revovered" and fn.output == "success"
    created = steps.data[1].step_details.message_creation.message_id
    assert created == messages.data[0].id
    one = await client.beta.threads.runs.steps.retrieve(
        steps.data[1].id, thread_id=thread.id, run_id=run.id
    )
    assert one.status == "completed"
    # The same run, as `tallybot runs show` sees it.
    stored = await server.bot.store.get_run(run.id)
    assert stored.status.value == "completed"
    assert [c.output for s in stored.steps for c in s.tool_calls] == ["success"]


async def test_streaming_with_an_event_handler(api_server) -> None:
    server = await api_server(
        [[call("get_total_revovered", {"totalRecovered": 7})], text("Seven ", "recovered.")]
    )
    client = server.client()
    assistant, thread = await _setup(client)
    seen: list[str] = []

    created_calls: list[str] = []

    class Handler(openai.AsyncAssistantEventHandler):
        async def on_event(self, event) -> None:
            seen.append(event.event)

        async def on_tool_call_created(self, tool_call) -> None:
            created_calls.append(tool_call.function.name)

    async with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()
    ) as stream:
        await stream.until_done()
        run = stream.current_run
    assert run is not None and run.status == "requires_action"
    assert seen[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert "thread.run.step.created" in seen and seen[-1] == "thread.run.requires_action"
    assert created_calls == ["get_total_revovered"]
    call_id = run.required_action.submit_tool_outputs.tool_calls[0].id
    seen.clear()
    handler = Handler()
    async with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call_id, "output": "success"}],
        event_handler=handler,
    ) as stream:
        await stream.until_done()
        final = await stream.get_final_messages()
    assert "thread.message.delta" in seen and seen[-1] == "thread.run.completed"
    assert seen.index("thread.message.created") < seen.index("thread.message.completed")
    assert [m.content[0].text.value for m in final] == ["Seven recovered."]
    listed = await client.beta.threads.messages.list(thread.id, limit=1)
    assert final[0].id == listed.data[0].id  # the streamed id is the stored one
    stored = await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert stored.status == "completed"


async def test_wrong_tool_outputs_are_refused_and_the_run_still_waits(api_server) -> None:
    server = await api_server([[call("get_total_revovered", {"totalRecovered": 1})]])
    client = server.client()
    assistant, thread = await _setup(client)
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    with pytest.raises(openai.BadRequestError) as err:
        await client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "nope", "output": "x"}]
        )
    assert err.value.body["param"] == "tool_outputs"
    again = await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert again.status == "requires_action"
    # A second run while this one waits: 409.
    with pytest.raises(openai.ConflictError) as busy:
        await client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert busy.value.status_code == 409
    with pytest.raises(openai.BadRequestError):
        await client.beta.threads.messages.create(thread.id, role="user", content="more")
    cancelled = await client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    with pytest.raises(openai.BadRequestError):
        await client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


async def test_cancel_a_streaming_run(api_server) -> None:
    pause = Pause()
    server = await api_server([[ModelTextDelta("thinking"), pause]])
    client = server.client()
    assistant, thread = await _setup(client)
    run = await client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "queued"
    await pause.reached.wait()
    cancelling = await client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    # The engine stops at the stream's next event; on a busy machine it may have got there
    # before the response was read back, and then the run is already cancelled.
    assert cancelling.status in ("cancelling", "cancelled")
    done = await client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
    assert done.status == "cancelled"
    assert server.model.closed_early == 1  # the model stream was closed


async def test_an_unanswered_function_expires(api_server) -> None:
    server = await api_server(
        [[call("get_total_revovered", {"totalRecovered": 1})]], run_expires_seconds=0
    )
    client = server.client()
    assistant, thread = await _setup(client)
    run = await client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    for _ in range(200):
        run = await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        if run.status not in ("queued", "in_progress", "requires_action"):
            break
        await asyncio.sleep(0.02)
    assert run.status == "expired"
    with pytest.raises(openai.BadRequestError):
        await client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "c", "output": "x"}]
        )


async def test_run_overrides_list_update_and_failure(api_server) -> None:
    from core.errors import ModelServerError

    server = await api_server([text("ok"), ModelServerError("upstream broke")])
    client = server.client()
    assistant, thread = await _setup(client)
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        instructions="Only this.",
        additional_instructions="And this.",
        additional_messages=[{"role": "user", "content": "extra question"}],
        tools=[],
        model="gpt-4o",
        temperature=0.2,
        max_prompt_tokens=1000,
        max_completion_tokens=500,
        metadata={"a": "b"},
        poll_interval_ms=20,
    )
    assert run.status == "completed" and run.model == "gpt-4o" and run.temperature == 0.2
    assert run.max_prompt_tokens == 1000 and run.metadata == {"a": "b"} and run.tools == []
    request = server.model.requests[0]
    assert "Only this." in request.instructions and "And this." in request.instructions
    assert "You are a data analyst." not in request.instructions and request.tools == ()
    updated = await client.beta.threads.runs.update(
        run.id, thread_id=thread.id, metadata={"x": "y"}
    )
    assert updated.metadata == {"x": "y"}
    failed = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert failed.status == "failed" and failed.failed_at
    assert (
        failed.last_error.code == "server_error" and "upstream broke" in failed.last_error.message
    )
    listed = await client.beta.threads.runs.list(thread.id)
    assert [r.id for r in listed.data] == [failed.id, run.id]


async def test_too_many_active_runs_is_429(api_server) -> None:
    server = await api_server(
        [[call("get_total_revovered", {"totalRecovered": 1})]], api_max_active_runs=1
    )
    client = server.client()
    assistant, thread = await _setup(client)
    await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    other = await client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as err:
        await client.beta.threads.runs.create(thread_id=other.id, assistant_id=assistant.id)
    assert err.value.body["code"] == "rate_limit_exceeded"


async def test_create_thread_and_run_with_bill_tools(api_server) -> None:
    from core.admin import Admin

    items = [{"name": "玫瑰", "quantity": 3, "unit_cost": "2", "unit_price": "5"}]
    args = {"date": "2026-12-01", "items": items}
    server = await api_server([[call("save_bill", args)], text("saved")])
    client = server.client()
    assistant = await client.beta.assistants.create(
        model="m", tools=[{"type": "function", "function": {"name": "save_bill"}}]
    )
    run = await client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "卖了3支玫瑰"}]},
        poll_interval_ms=20,
    )
    assert run.status == "completed"
    spec = server.model.requests[0].tools[0]
    assert spec.name == "save_bill" and spec.parameters["properties"]  # tallybot's own schema
    stored = await server.bot.store.get_run(run.id)
    output = json.loads(stored.steps[0].tool_calls[0].output)
    assert "error" not in output, output
    # What `tallybot bills list` shows: the bill the API run saved, totals computed by tallybot.
    (bill,) = await Admin(server.bot.store, server.bot.settings).bills()
    assert bill.to_json()["revenue"] in ("15", "15.00") and bill.to_json()["cost"] in ("6", "6.00")


async def test_a_run_a_crash_left_queued_resumes_with_its_own_instructions(api_server) -> None:
    from core.domain import Run, new_id

    first = await api_server()
    client = first.client()
    assistant, thread = await _setup(client)
    # What runs.create stores before it starts the run: the crash comes in between.
    store = first.bot.store
    users = await store.list_messages(thread.id, role="user")
    run = Run(id=new_id("run"), thread_id=thread.id, model="m", upto_seq=users[-1].seq)
    await store.create_run(run)
    project = (await store.thread_by_key((await store.get_thread(thread.id)).key)).key.split(":")[1]
    data = {"assistant_id": assistant.id, "instructions": "Resume me.", "tools": [FUNCTION]}
    await store.put_api_object("run", run.id, project, data, parent=thread.id)
    second = await api_server([text("resumed")])
    done = await second.client().beta.threads.runs.poll(
        run.id, thread_id=thread.id, poll_interval_ms=20
    )
    assert done.status == "completed"
    request = second.model.requests[0]
    assert "Resume me." in request.instructions
    assert [t.name for t in request.tools] == ["get_total_revovered"]


async def test_create_thread_and_run_stream_ends_with_done(api_server) -> None:
    import httpx

    from tests.assistants_api.conftest import KEY_A

    server = await api_server([text("你好", "！")])
    client = server.client()
    assistant = await client.beta.assistants.create(model="m")
    headers = {"Authorization": f"Bearer {KEY_A}"}
    body = {
        "assistant_id": assistant.id,
        "thread": {"messages": [{"role": "user", "content": "你好"}]},
        "stream": True,
    }
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        response = await http.post("/threads/runs", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        line[len("event: ") :] for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[-2:] == ["thread.run.completed", "done"]
    assert response.text.rstrip().endswith("data: [DONE]")
    deltas = [
        json.loads(line[len("data: ") :])["delta"]["content"][0]["text"]["value"]
        for line, name in zip(
            response.text.splitlines()[1:], response.text.splitlines(), strict=False
        )
        if name == "event: thread.message.delta"
    ]
    assert "".join(deltas) == "你好！"
