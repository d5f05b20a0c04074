"""Run lifecycle through the engine, identical for every model backend."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core.domain import RunStatus, StepStatus, StepType, utcnow
from core.errors import ModelServerError
from core.events import (
    ApprovalRequired,
    Reply,
    RunFinished,
    StatusChanged,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from core.models.base import FunctionCall, FunctionOutput, ModelTextDelta, UserText
from core.models.scripted import call, text


def statuses(events: list) -> list[str]:
    return [e.status.value for e in events if isinstance(e, StatusChanged)]


async def test_text_run_completes_and_is_persisted(make_harness) -> None:
    h = await make_harness([text("Hello", ", world")])
    events = await h.send("hi")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello, world"
    assert statuses(events) == ["in_progress", "completed"]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.text == "Hello, world"
    run = await h.store.get_run(finished.run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.started_at and run.completed_at and run.completed_at >= run.started_at
    assert [s.type for s in run.steps] == [StepType.MESSAGE_CREATION]
    assert run.steps[0].status == StepStatus.COMPLETED and run.steps[0].text == "Hello, world"
    history = await h.store.status_history(run.id)
    assert [(step is None, st) for step, st, _ in history] == [
        (True, "queued"),
        (True, "in_progress"),
        (False, "in_progress"),
        (False, "completed"),
        (True, "completed"),
    ]
    thread = await h.thread()
    msgs = await h.store.list_messages(thread.id)
    assert [(m.role, m.text) for m in msgs] == [("user", "hi"), ("assistant", "Hello, world")]


async def test_tool_call_runs_and_output_goes_back_to_model(make_harness) -> None:
    h = await make_harness([[call("echo", {"text": "ping"}, "c1")], text("pong")])
    events = await h.send("use the tool")
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    done = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [(e.call_id, e.name) for e in started] == [("c1", "echo")]
    assert json.loads(done[0].output) == {"echo": "ping"} and not done[0].is_error
    assert h.echo.calls == [("c1", "ping")]
    run = await h.store.get_run(events[-1].run_id)
    assert [s.type for s in run.steps] == [StepType.TOOL_CALLS, StepType.MESSAGE_CREATION]
    assert run.steps[0].tool_calls[0].output == done[0].output
    assert run.status == RunStatus.COMPLETED


async def test_second_request_carries_call_and_output(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    model = ScriptedModel([[call("echo", {"text": "x"}, "c1")], text("done")])
    h = Harness(settings, store, model)
    await h.send("go")
    second = model.requests[1].items
    assert second[0] == UserText("go")
    assert isinstance(second[1], FunctionCall) and second[1].call_id == "c1"
    assert isinstance(second[2], FunctionOutput) and json.loads(second[2].output) == {"echo": "x"}
    assert [t.name for t in model.requests[0].tools] == ["echo", "boom", "write"]


async def test_several_tool_calls_in_one_turn(make_harness) -> None:
    h = await make_harness(
        [[call("echo", {"text": "a"}, "c1"), call("echo", {"text": "b"}, "c2")], text("ok")]
    )
    events = await h.send("two")
    assert [c[1] for c in h.echo.calls] == ["a", "b"]
    assert isinstance(events[-1], RunFinished) and events[-1].status == RunStatus.COMPLETED


async def test_invalid_arguments_become_tool_error_not_crash(make_harness) -> None:
    h = await make_harness([[call("echo", {"txt": 1}, "c1")], text("sorry")])
    events = await h.send("bad args")
    done = [e for e in events if isinstance(e, ToolCallFinished)][0]
    assert done.is_error and "invalid_arguments" in done.output
    assert h.echo.calls == []
    assert events[-1].status == RunStatus.COMPLETED


async def test_tool_exception_becomes_tool_error(make_harness) -> None:
    h = await make_harness([[call("boom", {}, "c1")], text("it failed")])
    events = await h.send("explode")
    done = [e for e in events if isinstance(e, ToolCallFinished)][0]
    assert done.is_error and "ZeroDivisionError" in done.output
    assert events[-1].status == RunStatus.COMPLETED


async def test_unknown_tool_is_a_tool_error(make_harness) -> None:
    h = await make_harness([[call("nope", {}, "c1")], text("ok")])
    events = await h.send("x")
    done = [e for e in events if isinstance(e, ToolCallFinished)][0]
    assert done.is_error and "unknown tool" in done.output


async def test_max_turns_fails_the_run(make_harness, settings) -> None:
    settings.max_turns = 2
    h = await make_harness([[call("echo", {"text": str(i)}, f"c{i}")] for i in range(3)])
    events = await h.send("loop")
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == RunStatus.FAILED
    assert last.last_error and last.last_error["code"] == "max_turns_exceeded"
    run = await h.store.get_run(last.run_id)
    assert run.failed_at is not None and run.last_error["code"] == "max_turns_exceeded"
    assert len(h.echo.calls) == 2


async def test_model_error_fails_run_with_last_error(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    h = Harness(settings, store, ScriptedModel([ModelServerError("upstream 500")]))
    events = await h.send("hi")
    last = events[-1]
    assert last.status == RunStatus.FAILED
    assert last.last_error == {"code": "server_error", "message": "upstream 500"}
    assert "upstream 500" in last.text


async def test_partial_text_then_broken_stream_fails_cleanly(settings, store) -> None:
    from core.errors import BrokenStream
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    turn = [ModelTextDelta("Half an ans"), BrokenStream("connection reset")]
    h = Harness(settings, store, ScriptedModel([turn]))
    events = await h.send("hi")
    assert events[-1].status == RunStatus.FAILED
    run = await h.store.get_run(events[-1].run_id)
    assert run.steps[0].status == StepStatus.FAILED and run.steps[0].text == "Half an ans"
    msgs = await h.store.list_messages((await h.thread()).id, role="assistant")
    assert msgs == []  # a broken half answer is not stored as the assistant's message


async def test_approval_approve_resumes_and_runs_tool(make_harness, settings) -> None:
    settings.approve_writes = True
    h = await make_harness([[call("write", {"value": 7}, "w1")], text("written")])
    events = await h.send("write 7", lang="zh")
    assert statuses(events) == ["in_progress", "requires_action"]
    pending = events[-1]
    assert isinstance(pending, ApprovalRequired)
    assert [(c.call_id, c.name, c.summary) for c in pending.calls] == [("w1", "write", "写入 7")]
    run = await h.store.get_run(pending.run_id)
    assert run.status == RunStatus.REQUIRES_ACTION
    assert run.required_action["submit_tool_outputs"]["tool_calls"][0]["id"] == "w1"
    assert run.expires_at and run.expires_at > utcnow()
    assert h.write.executions == []
    thread = await h.thread()
    rest = await h.collect(h.engine.submit_tool_outputs(run.id, True, thread, "zh"))
    assert h.write.executions == [(run.id, "w1", 7)]
    assert rest[-1].status == RunStatus.COMPLETED and rest[-1].bills_changed == (7,)
    run = await h.store.get_run(run.id)
    assert run.required_action is None
    assert run.steps[0].tool_calls[0].approval == "approved"


async def test_approval_deny_does_not_run_tool(make_harness, settings) -> None:
    settings.approve_writes = True
    h = await make_harness([[call("write", {"value": 1}, "w1")], text("ok, not written")])
    events = await h.send("write 1")
    run_id = events[-1].run_id
    rest = await h.collect(
        h.engine.submit_tool_outputs(run_id, {"w1": False}, await h.thread(), "en")
    )
    assert h.write.executions == []
    denied = [e for e in rest if isinstance(e, ToolCallFinished)][0]
    assert denied.is_error and "denied" in denied.output
    assert rest[-1].status == RunStatus.COMPLETED


async def test_approval_expires(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    settings.approve_writes = True
    h = Harness(settings, store, ScriptedModel([[call("write", {"value": 1}, "w1")]]))
    events = await h.send("write")
    run = await h.store.get_run(events[-1].run_id)
    assert await h.engine.expire_due() == []  # not yet
    await h.store.update_run(run, expires_at=utcnow() - timedelta(seconds=1))
    expired = await h.engine.expire_due()
    assert [r.id for r in expired] == [run.id]
    run = await h.store.get_run(run.id)
    assert run.status == RunStatus.EXPIRED
    assert run.steps[0].status == StepStatus.EXPIRED
    late = await h.collect(h.engine.submit_tool_outputs(run.id, True, await h.thread(), "en"))
    assert isinstance(late[0], Reply) and late[0].kind == "error" and "expired" in late[0].text
    assert h.write.executions == []


async def test_submit_after_expiry_time_expires_instead_of_running(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    settings.approve_writes = True
    h = Harness(settings, store, ScriptedModel([[call("write", {"value": 1}, "w1")]]))
    events = await h.send("write")
    run = await h.store.get_run(events[-1].run_id)
    await h.store.update_run(run, expires_at=utcnow() - timedelta(seconds=1))
    late = await h.collect(h.engine.submit_tool_outputs(run.id, True, await h.thread(), "en"))
    assert late[0].kind == "error"
    assert (await h.store.get_run(run.id)).status == RunStatus.EXPIRED
    assert h.write.executions == []


async def test_duplicate_call_ids_from_a_server_are_made_unique(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    model = ScriptedModel(
        [
            [call("echo", {"text": "a"}, "call_0")],
            [call("echo", {"text": "b"}, "call_0")],
            text("ok"),
        ]
    )
    h = Harness(settings, store, model)
    events = await h.send("x")
    run = await h.store.get_run(events[-1].run_id)
    ids = [c.id for s in run.steps for c in s.tool_calls]
    assert ids == ["call_0", "call_0_1"]


@pytest.mark.parametrize("lang,expect", [("en", "Stopped"), ("zh", "已停止")])
async def test_cancel_mid_stream_closes_model_stream(settings, store, lang, expect) -> None:
    import asyncio

    from core.models.scripted import Pause, ScriptedModel
    from tests.engine.helpers import Harness

    pause = Pause()
    model = ScriptedModel([[ModelTextDelta("thinking…"), pause, ModelTextDelta("never")]])
    h = Harness(settings, store, model)
    thread = await h.thread()
    await store.add_message(thread.id, "user", "long question")
    run = await h.engine.create_run(thread)
    events: list = []

    async def consume() -> None:
        async for e in h.engine.execute(run, thread, lang):
            events.append(e)

    task = asyncio.create_task(consume())
    await pause.reached.wait()
    assert await h.engine.cancel(await store.get_run(run.id))
    await asyncio.wait_for(task, 5)
    assert statuses(events) == ["in_progress", "cancelling", "cancelled"]
    assert events[-1].text.startswith(expect)
    assert model.closed_early == 1
    final = await store.get_run(run.id)
    assert final.status == RunStatus.CANCELLED and final.cancelled_at is not None
    assert final.steps[0].status == StepStatus.CANCELLED
    assert "never" not in "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_cancel_waiting_run(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    settings.approve_writes = True
    h = Harness(settings, store, ScriptedModel([[call("write", {"value": 1}, "w1")]]))
    events = await h.send("write")
    run = await store.get_run(events[-1].run_id)
    assert await h.engine.cancel(run)
    run = await store.get_run(run.id)
    assert run.status == RunStatus.CANCELLED
    run_level = [s for step, s, _ in await store.status_history(run.id) if step is None]
    assert run_level[-2:] == ["cancelling", "cancelled"]
    assert not await h.engine.cancel(run)  # already finished


async def test_usage_is_recorded(make_harness) -> None:
    from core.models.base import ModelDone, Usage

    h = await make_harness([[ModelTextDelta("x"), ModelDone(Usage(11, 3))]])
    events = await h.send("count")
    run = await h.store.get_run(events[-1].run_id)
    assert run.usage == {"input_tokens": 11, "output_tokens": 3}


async def test_history_drops_oldest_turns_to_fit_budget(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    settings.history_max_messages = 4  # two earlier exchanges + the new question
    model = ScriptedModel([text(f"answer {i}") for i in range(5)])
    h = Harness(settings, store, model)
    for i in range(5):
        await h.send(f"question {i}")
    last = model.requests[-1].items
    assert [type(i).__name__ for i in last] == ["UserText", "AssistantText", "UserText"]
    assert [getattr(i, "text", None) for i in last] == ["question 3", "answer 3", "question 4"]
    assert len(model.requests[1].items) == 3  # the first follow-up still saw everything

    settings.history_max_messages = 40
    settings.history_budget_chars = 30
    model.add(text("short"))
    await h.send("x" * 20)
    kept = model.requests[-1].items
    assert kept[0] == UserText("x" * 20)  # older turns dropped, the current one always kept


async def test_large_tool_output_is_cut_with_marker(settings, store) -> None:
    from core.models.scripted import ScriptedModel
    from tests.engine.helpers import Harness

    settings.tool_output_limit = 50
    model = ScriptedModel([[call("echo", {"text": "y" * 500}, "c1")], text("ok")])
    h = Harness(settings, store, model)
    await h.send("big")
    output = [i for i in model.requests[1].items if isinstance(i, FunctionOutput)][0].output
    assert output.startswith('{"echo": "yyy') and "[cut " in output
    assert len(output) < 120


def test_transition_table_is_enforced() -> None:
    from core.domain import RUN_TRANSITIONS, check_run_transition
    from core.errors import IllegalTransition

    allowed = {(a, b) for a, targets in RUN_TRANSITIONS.items() for b in targets}
    for old in RunStatus:
        for new in RunStatus:
            if (old, new) in allowed:
                check_run_transition(old, new)
            else:
                with pytest.raises(IllegalTransition):
                    check_run_transition(old, new)
    for terminal in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.EXPIRED):
        assert RUN_TRANSITIONS[terminal] == frozenset() and terminal.terminal


async def test_store_refuses_illegal_transition_and_stale_status(settings, store) -> None:
    from core.domain import Run, new_id
    from core.errors import IllegalTransition

    thread = await store.get_or_create_thread("t:x")
    run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    with pytest.raises(IllegalTransition):
        await store.set_run_status(run, RunStatus.COMPLETED)  # queued -> completed skips a step
    stale = await store.get_run(run.id)
    await store.set_run_status(run, RunStatus.IN_PROGRESS)
    with pytest.raises(IllegalTransition):
        await store.set_run_status(stale, RunStatus.CANCELLING)  # someone else moved it first
    assert (await store.get_run(run.id)).status == RunStatus.IN_PROGRESS


@pytest.mark.parametrize(
    "path",
    [
        ["in_progress", "completed"],
        ["in_progress", "failed"],
        ["in_progress", "requires_action", "in_progress", "completed"],
        ["in_progress", "requires_action", "expired"],
        ["in_progress", "requires_action", "cancelling", "cancelled"],
        ["in_progress", "cancelling", "cancelled"],
        ["cancelling", "cancelled"],
        ["failed"],
        ["expired"],
        ["in_progress", "expired"],
        ["in_progress", "requires_action", "failed"],
        ["in_progress", "cancelling", "failed"],
    ],
)
async def test_every_status_is_persisted_with_its_timestamp(settings, store, path) -> None:
    from core.domain import Run, new_id

    thread = await store.get_or_create_thread("t:path")
    run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    for status in path:
        await store.set_run_status(run, RunStatus(status))
    final = await store.get_run(run.id)
    assert final.status == RunStatus(path[-1])
    logged = [s for step, s, _ in await store.status_history(run.id) if step is None]
    assert logged == ["queued", *path]
    stamps = {
        "completed": final.completed_at,
        "failed": final.failed_at,
        "cancelled": final.cancelled_at,
    }
    if path[-1] in stamps:
        assert stamps[path[-1]] is not None
    if "in_progress" in path:
        assert final.started_at is not None
