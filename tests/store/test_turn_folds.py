"""The turn's folded statements (core.store.turns, issue 12) return what the separate statements
they replace returned: the thread with its files, the waiting run with the unanswered message,
and the seqs of a batch of calls; on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.domain import FileRef, Run, RunStatus, RunStep, StepType, Thread, ToolCall, new_id
from core.errors import IllegalTransition, NotFound
from core.store import Store, turns
from core.store.tables import files, run_steps, runs, threads, tool_calls

# What _read_context and start_run ran before they were folded, as SQLAlchemy statements.
_THREAD = sa.select(threads).where(threads.c.id == sa.bindparam("w_thread"))
_FILES = (
    sa.select(files)
    .where(files.c.thread_id == sa.bindparam("w_thread"))
    .order_by(files.c.created_at)
)
_LAST_ACTIVE = (
    sa.select(runs)
    .where(
        runs.c.thread_id == sa.bindparam("w_thread"),
        runs.c.status.in_(turns._ACTIVE),
    )
    .order_by(runs.c.created_at.desc(), runs.c.id.desc())
    .limit(1)
)
_UNANSWERED = turns._UNANSWERED.stmt  # still run alone when start_run does not stop_at_waiting


async def _context(store: Store, thread_id: str) -> tuple[turns.TurnContext, Any, list[Any]]:
    """The folded read and, in the same transaction, the two statements it replaced."""

    def work(conn: sa.Connection) -> tuple[turns.TurnContext, Any, list[Any]]:
        params = {"w_thread": thread_id}
        old = conn.execute(_THREAD, params).first(), conn.execute(_FILES, params).all()
        return turns._read_context(conn, thread_id), *old

    return await store.db.read(work)


def _file(thread: Thread, name: str, at: datetime) -> FileRef:
    ref = FileRef(new_id("file"), thread.id, name, f"/x/{name}", "0" * 64, 3, "text/csv", "table")
    ref.summary, ref.created_at = f"summary of {name}", at
    return ref


async def test_the_thread_and_its_files_in_one_statement(any_store: Store) -> None:
    store = any_store
    thread = await store.get_or_create_thread("test:context")
    await store.update_thread(thread.id, title="sales", metadata={"k": [1, "二"]})
    other = await store.get_or_create_thread("test:other")
    await store.add_file(_file(other, "elsewhere.csv", datetime(2026, 1, 1, tzinfo=UTC)))

    ctx, thread_row, file_rows = await _context(store, thread.id)  # no files
    assert ctx.files == [] and file_rows == []
    assert ctx.thread == store._thread(thread_row) == await store.get_thread(thread.id)
    assert ctx.thread.title == "sales" and ctx.thread.metadata == {"k": [1, "二"]}
    assert ctx.history is None

    base = datetime(2026, 12, 2, 7, 0, 0, 123456, tzinfo=UTC)
    await store.add_file(_file(thread, "b.csv", base + timedelta(seconds=2)))
    ctx, thread_row, file_rows = await _context(store, thread.id)  # one file
    assert [f.name for f in ctx.files] == ["b.csv"]
    assert ctx.files == [store._file(r) for r in file_rows] == await store.list_files(thread.id)
    assert ctx.files[0].created_at == base + timedelta(seconds=2)
    assert ctx.files[0].created_at.tzinfo is UTC and ctx.files[0].summary == "summary of b.csv"

    # Added out of order: read in created_at order, the thread once.
    await store.add_file(_file(thread, "c.csv", base + timedelta(seconds=3)))
    await store.add_file(_file(thread, "a.csv", base))
    ctx, thread_row, file_rows = await _context(store, thread.id)
    assert [f.name for f in ctx.files] == ["a.csv", "b.csv", "c.csv"]
    assert ctx.files == [store._file(r) for r in file_rows] == await store.list_files(thread.id)
    assert ctx.thread == store._thread(thread_row)


async def test_a_missing_thread_is_not_found(any_store: Store) -> None:
    with pytest.raises(NotFound, match="no thread thread_nope"):
        await any_store.turn_context("thread_nope")


async def _started(store: Store, thread: Thread) -> tuple[turns.Started, Any, Any]:
    """start_run with stop_at_waiting, after reading what the two statements it folds read
    (the old reads first: a run it creates would answer the message)."""

    def old(conn: sa.Connection) -> tuple[Any, Any]:
        params = {"w_thread": thread.id}
        return conn.execute(_LAST_ACTIVE, params).first(), conn.execute(
            _UNANSWERED, params
        ).scalar()

    last, upto = await store.db.read(old)
    run = Run(id=new_id("run"), thread_id=thread.id, model="m")
    started = await store.start_run(run, expires_at=None, stop_at_waiting=True)
    return started, last, upto


async def test_the_waiting_run_and_the_unanswered_message_in_one_statement(
    any_store: Store,
) -> None:
    store = any_store
    thread = await store.get_or_create_thread("test:start")

    # No run and no message: nothing to answer, nothing active.
    started, last, upto = await _started(store, thread)
    assert (last, upto) == (None, None) and started == turns.Started(None, None)

    # Unanswered messages, no run yet: a run up to the newest of them.
    await store.add_message(thread.id, "user", "one")
    newest = await store.add_message(thread.id, "user", "two")
    started, last, upto = await _started(store, thread)
    assert (last, upto) == (None, newest.seq)
    assert started.waiting is None and started.run is not None
    assert started.run.upto_seq == newest.seq and started.run.status == RunStatus.QUEUED
    first = started.run

    # An active run that does not wait (queued), every message answered: nothing to do.
    started, last, upto = await _started(store, thread)
    assert last.id == first.id and upto is None and started == turns.Started(None, None)

    # That run waits for approval, a message came meanwhile: it is returned, nothing written.
    await store.set_run_status(first, RunStatus.IN_PROGRESS)
    await store.set_run_status(first, RunStatus.REQUIRES_ACTION, required_action={"a": 1})
    later = await store.add_message(thread.id, "user", "three")
    started, last, upto = await _started(store, thread)
    assert (last.id, last.status, upto) == (first.id, "requires_action", later.seq)
    assert started.run is None and started.waiting is not None
    assert started.waiting == store._run(last) == await store.get_run(first.id, with_steps=False)
    assert started.waiting.required_action == {"a": 1}
    assert [r.id for r in await store.list_runs(thread_id=thread.id)] == [first.id]

    # The newest of two active runs is the one looked at: the first does not wait, so a
    # second run is made; then the first waits, but the second (newer, queued) does not.
    await store.set_run_status(first, RunStatus.IN_PROGRESS)
    started, last, upto = await _started(store, thread)
    assert (last.id, upto) == (first.id, later.seq)
    assert started.waiting is None and started.run is not None
    second = started.run
    assert second.upto_seq == later.seq
    await store.set_run_status(first, RunStatus.REQUIRES_ACTION)
    started, last, upto = await _started(store, thread)
    assert (last.id, upto) == (second.id, None) and started == turns.Started(None, None)


async def test_a_batch_of_calls_is_numbered_after_the_runs_earlier_calls(
    any_store: Store,
) -> None:
    store = any_store
    thread = await store.get_or_create_thread("test:calls")
    run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    other = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    first = await store.add_step(run, StepType.TOOL_CALLS)
    await store.add_tool_call(first, ToolCall("call_0", run.id, first.id, "t", "{}"))
    elsewhere = await store.add_step(other, StepType.TOOL_CALLS)  # another run's: not counted
    for i in range(2):
        await store.add_tool_call(elsewhere, ToolCall(f"x{i}", other.id, elsewhere.id, "t", "{}"))

    for ids in (["call_a", "call_b", "call_c"], ["call_d"], [], ["call_e", "call_f"]):
        step = RunStep(id=new_id("step"), run_id=run.id, type=StepType.TOOL_CALLS)
        calls = [ToolCall(i, run.id, step.id, "t", f'{{"i": "{i}"}}') for i in ids]
        ctx = await store.record_calls(run, step, calls, usage={"n": len(ids)})
        assert ctx.thread.id == thread.id

    def seqs(conn: sa.Connection) -> list[tuple[str, str, int]]:
        q = sa.select(tool_calls.c.run_id, tool_calls.c.id, tool_calls.c.seq).order_by(
            tool_calls.c.run_id, tool_calls.c.seq
        )
        return [tuple(r) for r in conn.execute(q.where(tool_calls.c.run_id == run.id))]

    got = await store.db.read(seqs)
    assert got == [
        (run.id, name, seq)
        for seq, name in enumerate(
            ["call_0", "call_a", "call_b", "call_c", "call_d", "call_e", "call_f"]
        )
    ]
    loaded = await store.get_run(run.id)
    assert [[c.id for c in s.tool_calls] for s in loaded.steps] == [
        ["call_0"],
        ["call_a", "call_b", "call_c"],
        ["call_d"],
        [],
        ["call_e", "call_f"],
    ]
    assert loaded.usage == {"n": 2}


async def test_steps_and_their_calls_in_one_statement(any_store: Store) -> None:
    """A run's steps with their calls (get_run, the history window) are what the separate
    listings of steps and of calls gave: steps in seq order, each with its calls in seq
    order, a step without calls with none; for one run and for several."""
    store = any_store
    thread = await store.get_or_create_thread("test:steps")
    made: list[Run] = []
    for n, shape in enumerate([[2, None, 1, 0], [3], []]):  # calls per step; None: a message
        run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
        for k, count in enumerate(shape):
            kind = StepType.MESSAGE_CREATION if count is None else StepType.TOOL_CALLS
            step = await store.add_step(run, kind)
            for i in range(count or 0):
                call = ToolCall(f"c{n}{k}{i}", run.id, step.id, "t", f'{{"i": {i}}}')
                await store.add_tool_call(step, call)
        if run.steps:
            await store.set_tool_output(run.steps[0].tool_calls[0], "out", is_error=True)
        made.append(run)

    def old(conn: sa.Connection) -> dict[str, list[tuple[str, list[str]]]]:
        ids = [r.id for r in made]
        steps = conn.execute(
            sa.select(run_steps).where(run_steps.c.run_id.in_(ids)).order_by(run_steps.c.seq)
        ).all()
        calls = conn.execute(
            sa.select(tool_calls).where(tool_calls.c.run_id.in_(ids)).order_by(tool_calls.c.seq)
        ).all()
        return {
            run_id: [
                (s.id, [c.id for c in calls if c.step_id == s.id])
                for s in steps
                if s.run_id == run_id
            ]
            for run_id in ids
        }

    listed = await store.db.read(old)
    assert [len(v) for v in listed.values()] == [4, 1, 0]
    for run in made:  # one run: the prepared statement
        loaded = await store.get_run(run.id)
        assert loaded.steps == run.steps
        assert [(s.id, [c.id for c in s.tool_calls]) for s in loaded.steps] == listed[run.id]
    several = [Run(id=r.id, thread_id=thread.id, model="m") for r in made]
    await store.load_steps(several)  # several: the same statement through SQLAlchemy
    assert [r.steps for r in several] == [r.steps for r in made]
    first_call = several[0].steps[0].tool_calls[0]
    assert (first_call.output, first_call.is_error) == ("out", True)
    assert several[0].steps[1].type == StepType.MESSAGE_CREATION
    assert several[0].steps[1].tool_calls == [] == several[0].steps[3].tool_calls


async def _in_progress(store: Store, key: str) -> Run:
    thread = await store.get_or_create_thread(key)
    message = await store.add_message(thread.id, "user", "q")
    run = Run(id=new_id("run"), thread_id=thread.id, model="m", upto_seq=message.seq)
    await store.create_run(run)
    return await store.set_run_status(run, RunStatus.IN_PROGRESS)


def _log(history: list[tuple[str | None, str, Any]]) -> list[tuple[str | None, str]]:
    return [(step, status) for step, status, _ in history]


@pytest.mark.parametrize("complete", [True, False])
async def test_an_answer_logs_its_step_and_its_run_in_order(any_store: Store, complete) -> None:
    """finish_message writes the step's two log rows with the run's in one INSERT: the same
    rows, in the same order, as separate inserts wrote; without ``complete`` only the step's."""
    store = any_store
    run = await _in_progress(store, f"test:answer:{complete}")
    step = RunStep(id=new_id("step"), run_id=run.id, type=StepType.MESSAGE_CREATION)
    await store.finish_message(
        run, step, "the answer", message_id=new_id("msg"), usage={"t": 3},
        complete={} if complete else None,
    )  # fmt: skip
    history = await store.status_history(run.id)
    assert _log(history) == [
        (None, "queued"),
        (None, "in_progress"),
        (step.id, "in_progress"),
        (step.id, "completed"),
        *([(None, "completed")] if complete else []),
    ]
    assert history[2][2] == step.created_at and history[3][2] == step.completed_at
    loaded = await store.get_run(run.id)
    assert loaded.status == (RunStatus.COMPLETED if complete else RunStatus.IN_PROGRESS)
    assert loaded.usage == {"t": 3} and loaded.steps == [step]
    assert [m.text for m in await store.list_messages(run.thread_id)] == ["q", "the answer"]


async def test_an_answer_raced_by_a_cancel_keeps_its_step_and_logs_only_it(
    any_store: Store,
) -> None:
    store = any_store
    run = await _in_progress(store, "test:raced")
    other = await store.get_run(run.id)  # someone else moves it first
    await store.set_run_status(other, RunStatus.CANCELLING)
    step = RunStep(id=new_id("step"), run_id=run.id, type=StepType.MESSAGE_CREATION)
    with pytest.raises(IllegalTransition, match="is cancelling"):
        await store.finish_message(
            run, step, "late", message_id=new_id("msg"), usage={"t": 1}, complete={}
        )
    assert _log(await store.status_history(run.id)) == [
        (None, "queued"),
        (None, "in_progress"),
        (None, "cancelling"),
        (step.id, "in_progress"),
        (step.id, "completed"),
    ]
    loaded = await store.get_run(run.id)
    assert loaded.status == RunStatus.CANCELLING and loaded.usage == {"t": 1}
    assert loaded.steps == [step] and run.status == RunStatus.IN_PROGRESS
    assert [m.text for m in await store.list_messages(run.thread_id)] == ["q", "late"]
