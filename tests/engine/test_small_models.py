"""Issue 13, small models: the repeat guard, the run timeout, fitting a small context window."""

from __future__ import annotations

import json
from typing import Any

from core.config import Settings
from core.context_window import Window, estimate_tokens, item_tokens, tools_tokens
from core.domain import RunStatus
from core.events import RunFinished, ToolCallFinished
from core.models.base import FunctionOutput, ModelTextDelta, UserText
from core.models.scripted import Pause, ScriptedModel, call, text
from core.repeat_guard import ALREADY_DONE
from core.store import Store
from core.tools.base import ToolContext, ToolResult
from tests.engine.helpers import Harness


async def test_identical_call_is_not_executed_again(make_harness) -> None:
    same = {"text": "玫瑰 x3"}
    harness = await make_harness(
        [
            [call("echo", same, "c1")],
            [call("echo", {"text": "玫瑰 x3"}, "c2")],  # the small model repeats itself
            text("Saved."),
        ]
    )
    events = await harness.send("save")
    assert harness.echo.calls == [("c1", "玫瑰 x3")]  # executed once
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    repeat = json.loads(finished[1].output)
    assert repeat["note"] == ALREADY_DONE and repeat["result"] == {"echo": "玫瑰 x3"}
    assert isinstance(events[-1], RunFinished) and events[-1].status == RunStatus.COMPLETED


async def test_repeat_after_a_write_runs_again(settings: Settings, store: Store) -> None:
    model = ScriptedModel(
        [
            [call("echo", {"text": "a"}, "c1")],
            [call("write", {"value": 1}, "w1")],
            [call("echo", {"text": "a"}, "c2")],  # e.g. get_bill after amend_bill: fresh result
            text("done"),
        ]
    )
    harness = Harness(settings, store, model)
    await harness.send("go")
    assert [c for c, _ in harness.echo.calls] == ["c1", "c2"]


async def test_repeated_write_needing_approval_is_not_asked_twice(
    settings: Settings, store: Store
) -> None:
    settings = settings.model_copy(update={"approve_writes": True})
    model = ScriptedModel(
        [[call("write", {"value": 7}, "w1")], [call("write", {"value": 7}, "w2")], text("ok")]
    )
    harness = Harness(settings, store, model)
    events = await harness.send("write 7")
    run_id = events[-1].run_id
    thread = await harness.thread()
    resumed = [e async for e in harness.engine.submit_tool_outputs(run_id, True, thread, "en")]
    assert harness.write.executions == [(run_id, "w1", 7)]
    assert isinstance(resumed[-1], RunFinished) and resumed[-1].status == RunStatus.COMPLETED


async def test_run_timeout_fails_the_run_clearly(settings: Settings, store: Store) -> None:
    settings = settings.model_copy(update={"run_timeout": 0.05})
    pause = Pause()  # never released: the model "thinks" forever
    harness = Harness(settings, store, ScriptedModel([[ModelTextDelta("Let me"), pause]]))
    events = await harness.send("slow question")
    final = events[-1]
    assert isinstance(final, RunFinished) and final.status == RunStatus.FAILED
    assert final.last_error and final.last_error["code"] == "run_timeout"
    assert "TALLYBOT_RUN_TIMEOUT" in final.text
    assert harness.model.closed_early == 1  # the model stream was closed


async def test_run_timeout_zh(settings: Settings, store: Store) -> None:
    settings = settings.model_copy(update={"run_timeout": 0.05})
    harness = Harness(settings, store, ScriptedModel([[Pause()]]))
    events = await harness.send("慢", lang="zh")
    assert "秒" in events[-1].text


async def test_context_window_drops_old_exchanges_and_cuts_outputs(
    settings: Settings, store: Store
) -> None:
    settings = settings.model_copy(update={"context_tokens": 2048})
    model = ScriptedModel([text("x" * 6000)] * 4 + [[call("echo", {"text": "y"})], text("ok")])
    harness = Harness(settings, store, model)

    async def big_output(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult(output={"rows": "y" * 12_000})  # a long table preview

    harness.echo.run = big_output  # type: ignore[method-assign]
    for i in range(4):
        await harness.send(f"question {i}")
    await harness.send("last")
    window = Window(2048)
    for request in model.requests[4:]:
        used = (
            estimate_tokens(request.instructions)
            + tools_tokens(request.tools)
            + sum(item_tokens(i) for i in request.items)
        )
        assert used <= window.input, used
        assert request.items[0] == UserText("last")  # older exchanges dropped
    outputs = [i for i in model.requests[-1].items if isinstance(i, FunctionOutput)]
    assert outputs and "cut" in outputs[0].output


async def test_unknown_window_trims_nothing(settings: Settings, store: Store) -> None:
    model = ScriptedModel([text("x" * 3000)] * 3)
    harness = Harness(settings, store, model)
    for i in range(3):
        await harness.send(f"q{i}")
    assert len(model.requests[-1].items) == 5


def test_token_estimate() -> None:
    assert estimate_tokens("abcd" * 10) == 10
    assert estimate_tokens("向日葵") == 3
    assert estimate_tokens("") == 0


async def test_small_window_shrinks_file_previews_first(settings: Settings, store: Store) -> None:
    from core.domain import FileRef

    settings = settings.model_copy(update={"context_tokens": 2048})
    model = ScriptedModel([text("ok")])
    harness = Harness(settings, store, model)
    thread = await harness.thread()
    await store.add_file(
        FileRef(
            id="file_big",
            thread_id=thread.id,
            name="sales.csv",
            path="/nonexistent",
            sha256="0" * 64,
            size=1,
            mime="text/csv",
            kind="table",
            summary="rows " * 1000,  # a 5,000-character preview
        )
    )
    await harness.send("total?")
    (request,) = model.requests
    assert "## sales.csv" in request.instructions
    assert estimate_tokens(request.instructions) < 600
    assert "cut" in request.instructions
