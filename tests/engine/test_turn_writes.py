"""What a turn writes, and when (issue 12): the ``message_creation`` step is made in memory at
the first text and stored with the answer, or with the text so far when the stream breaks off;
its status-log rows are the ones a separate insert and completion wrote."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.exc import OperationalError

from core.domain import RunStatus, StepStatus, StepType
from core.errors import BrokenStream
from core.events import TextDelta
from core.models.base import ModelDone, ModelTextDelta, Usage
from core.models.scripted import Pause, ScriptedModel, text
from core.store import Store
from tests.engine.helpers import Harness


def _step_log(history: list[tuple[str | None, str, Any]]) -> list[tuple[str | None, str]]:
    return [(step, status) for step, status, _ in history]


async def test_an_answer_stores_its_step_once_with_both_log_rows(settings, any_store) -> None:
    h = Harness(settings, any_store, ScriptedModel([text("Revenue ", "is 60.")]))
    events = await h.send("how much?")
    assert events[-1].status == RunStatus.COMPLETED
    run = await any_store.get_run(events[-1].run_id)
    [step] = run.steps
    assert step.type == StepType.MESSAGE_CREATION and step.status == StepStatus.COMPLETED
    assert step.text == "Revenue is 60." and step.completed_at is not None
    history = await any_store.status_history(run.id)
    assert _step_log(history) == [
        (None, "queued"),
        (None, "in_progress"),
        (step.id, "in_progress"),
        (step.id, "completed"),
        (None, "completed"),
    ]
    # The step's first row is stamped when its first text came, as the insert then was.
    assert history[2][2] == step.created_at <= history[3][2] == step.completed_at
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert {(e.step_id, e.step_created_at) for e in deltas} == {(step.id, step.created_at)}


async def test_while_text_streams_the_step_is_in_memory_only(settings, any_store) -> None:
    pause = Pause()
    model = ScriptedModel([[ModelTextDelta("Half "), pause, ModelTextDelta("done.")]])
    h = Harness(settings, any_store, model)
    thread = await h.thread()
    await any_store.add_message(thread.id, "user", "q")
    run = await h.engine.create_run(thread)
    assert run is not None
    task = asyncio.create_task(h.collect(h.engine.execute(run, thread, "en")))
    await pause.reached.wait()
    assert (await any_store.get_run(run.id)).steps == []  # nothing written for the text yet
    [live] = run.steps
    pause.event.set()
    events = await asyncio.wait_for(task, 10)
    assert events[-1].status == RunStatus.COMPLETED
    [stored] = (await any_store.get_run(run.id)).steps
    assert stored.id == live.id and stored.text == "Half done."


async def test_a_broken_stream_stores_the_step_with_its_partial_text(settings, any_store) -> None:
    turn = [ModelTextDelta("Half an "), ModelTextDelta("ans"), BrokenStream("connection reset")]
    h = Harness(settings, any_store, ScriptedModel([turn]))
    events = await h.send("hi")
    assert events[-1].status == RunStatus.FAILED
    run = await any_store.get_run(events[-1].run_id)
    [step] = run.steps
    assert step.status == StepStatus.FAILED and step.text == "Half an ans"
    steps_log = [(s, st) for s, st in _step_log(await any_store.status_history(run.id)) if s]
    assert steps_log == [(step.id, "in_progress"), (step.id, "failed")]


async def test_a_cancel_mid_stream_keeps_the_partial_text(settings, any_store) -> None:
    pause = Pause()
    model = ScriptedModel([[ModelTextDelta("thinking…"), pause, ModelTextDelta("never")]])
    h = Harness(settings, any_store, model)
    thread = await h.thread()
    await any_store.add_message(thread.id, "user", "long question")
    run = await h.engine.create_run(thread)
    assert run is not None
    task = asyncio.create_task(h.collect(h.engine.execute(run, thread, "en")))
    await pause.reached.wait()
    assert await h.engine.cancel(await any_store.get_run(run.id))
    await asyncio.wait_for(task, 10)
    [step] = (await any_store.get_run(run.id)).steps
    assert step.status == StepStatus.CANCELLED and step.text == "thinking…"


async def test_a_cut_answer_without_text_still_gets_its_step(settings, store: Store) -> None:
    h = Harness(settings, store, ScriptedModel([[ModelDone(Usage(3, 1), incomplete="length")]]))
    events = await h.send("hi")
    assert events[-1].status == RunStatus.COMPLETED
    [step] = (await store.get_run(events[-1].run_id)).steps
    assert step.type == StepType.MESSAGE_CREATION and step.status == StepStatus.COMPLETED
    assert step.text.strip()  # the "answer was cut" note
    assert [e.step_id for e in events if isinstance(e, TextDelta)] == [step.id]


async def test_an_answer_the_store_refused_is_not_kept_in_memory(settings, store: Store) -> None:
    h = Harness(settings, store, ScriptedModel([text("never stored")]))

    async def disk_full(*_: Any, **__: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    store.finish_message = disk_full  # type: ignore[method-assign]
    thread = await h.thread()
    await store.add_message(thread.id, "user", "q")
    run = await h.engine.create_run(thread)
    assert run is not None
    events = await h.collect(h.engine.execute(run, thread, "en"))
    assert events[-1].status == RunStatus.FAILED
    assert run.steps == []  # as the store holds it
    assert (await store.get_run(run.id)).steps == []
