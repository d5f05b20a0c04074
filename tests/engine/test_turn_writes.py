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


async def _paused(settings, store, first: str, then: str):  # type: ignore[no-untyped-def]
    """A run whose model streamed ``first`` and waits (``pause.event``) before ``then``."""
    pause = Pause()
    model = ScriptedModel([[ModelTextDelta(first), pause, ModelTextDelta(then)]])
    h = Harness(settings, store, model)
    thread = await h.thread()
    await store.add_message(thread.id, "user", "a question")
    run = await h.engine.create_run(thread)
    assert run is not None
    task = asyncio.create_task(h.collect(h.engine.execute(run, thread, "en")))
    await pause.reached.wait()
    return h, run, task, pause


async def test_while_text_streams_the_step_is_in_memory_only(settings, any_store) -> None:
    h, run, task, pause = await _paused(settings, any_store, "Half ", "done.")
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
    h, run, task, _pause = await _paused(settings, any_store, "thinking…", "never")
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


class _Counted:
    """Counts the store's transactions (``db.read`` / ``db.write``) from now on."""

    def __init__(self, store: Store) -> None:
        self.reads = self.writes = 0
        db = store.db
        read, write, alone = db.read, db.write, db.write_alone

        def counted_read(work: Any) -> Any:
            self.reads += 1
            return read(work)

        def counted_write(work: Any) -> Any:
            self.writes += 1
            return write(work)

        def counted_alone(work: Any) -> Any:
            # One transaction that writes (one statement in autocommit on PostgreSQL).
            self.writes += 1
            return alone(work)

        db.read, db.write = counted_read, counted_write  # type: ignore[method-assign]
        db.write_alone = counted_alone  # type: ignore[method-assign]


async def _second_turn(h: Harness, key: str, *, started: bool) -> tuple[Any, _Counted]:
    """On thread ``key``: one answered exchange, then a second message run to the end,
    its run created by ``Engine.start_run`` (``started``) or ``create_run`` (queued)."""
    await h.send("first question", key=key)
    thread = await h.thread(key)
    await h.store.add_message(thread.id, "user", "second question")
    if started:
        _, run = await h.engine.start_run(thread)
    else:
        run = await h.engine.create_run(thread)
    assert run is not None
    counted = _Counted(h.store)
    events = await h.collect(h.engine.execute(run, thread, "en"))
    assert events[-1].status == RunStatus.COMPLETED
    return run, counted


async def test_a_started_run_reads_nothing_for_its_first_request(settings, any_store) -> None:
    model = ScriptedModel([text("first answer"), text("second answer")] * 2)
    h = Harness(settings, any_store, model)
    _, started = await _second_turn(h, "test:started", started=True)
    # The answer is the one write; thread, files and history came with start_run.
    assert (started.reads, started.writes) == (0, 1)
    _, queued = await _second_turn(h, "test:queued", started=False)
    assert (queued.reads, queued.writes) == (1, 2)  # queued -> in_progress, then the answer
    # The same request either way: what start_run read is what the first turn would read.
    first, second = model.requests[1], model.requests[3]
    assert first.items == second.items and len(first.items) == 3
    assert first.instructions == second.instructions


async def test_a_started_run_with_tool_calls_reads_after_its_writes(settings, any_store) -> None:
    from core.models.scripted import call

    model = ScriptedModel([[call("echo", {"text": "x"}, "c1")], text("echoed")])
    h = Harness(settings, any_store, model)
    thread = await h.thread()
    await any_store.add_message(thread.id, "user", "echo x")
    _, run = await h.engine.start_run(thread)
    assert run is not None
    counted = _Counted(any_store)
    events = await h.collect(h.engine.execute(run, thread, "en"))
    assert events[-1].status == RunStatus.COMPLETED
    assert h.echo.calls == [("c1", "x")]
    # Calls recorded, output stored, answer: three writes (each reads what comes next).
    assert (counted.reads, counted.writes) == (0, 3)
    assert not h.engine._started  # handed to the run, not kept


async def test_count_turn_figures(tmp_path) -> None:
    """bench/count_turn.py's figures on SQLite (counted, never timed)."""
    from bench.count_turn import count

    result = await count(None, tmp_path, show=False)
    new, long = result["new conversation"], result["turn 30 of one"]
    assert (new["transactions"], long["transactions"]) == (7, 6)
    assert (new["db.read"], long["db.read"]) == (1, 1)
