"""PostgreSQL's one-statement writes (core.store.pg_turns, issue 12) write row for row what the
separate statements of the same transaction write, return the same context, and are all or
nothing; ``Database.write_alone`` retries only a statement that never went out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.domain import FileRef, Run, RunStatus, RunStep, StepType, ToolCall, new_id
from core.errors import IllegalTransition
from core.store import Store, db
from core.store.base import Database
from core.store.fast import Prepared
from core.store.tables import messages, run_steps, runs, status_log, tool_calls
from tests.pg import PG_URL, pg_store, terminate

AT = datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)  # before any wall-clock time of a test


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async for st in pg_store():
        yield st


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """store_output and status changes stamp ``utcnow()``: the same time on both paths."""
    import core.store.runs
    import core.store.turns

    for module in (core.store.turns, core.store.runs):
        monkeypatch.setattr(module, "utcnow", lambda: AT + timedelta(seconds=5))
    return AT


async def _play(store: Store, key: str) -> tuple[Run, list[Any]]:
    """One run through record_calls and store_output in every shape they have: a step with
    details and two calls, an output that leaves the step open, one that completes it, a
    step without details or calls, a step with one call. Returns the run and the contexts."""
    thread = await store.get_or_create_thread(key)
    ref = FileRef(new_id("file"), thread.id, "s.csv", "/x/s.csv", "0" * 64, 3, "text/csv", "table")
    ref.summary, ref.created_at = "sales", AT
    await store.add_file(ref)
    run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    await store.set_run_status(run, RunStatus.IN_PROGRESS)
    got = []

    def step(details: dict[str, Any] | None = None) -> RunStep:
        made = RunStep(id=new_id("step"), run_id=run.id, type=StepType.TOOL_CALLS)
        made.created_at, made.details = AT, details
        return made

    def call(name: str, of: RunStep) -> ToolCall:
        made = ToolCall(name, run.id, of.id, "save_bill", '{"date": "2026-12-02"}')
        made.created_at = AT
        return made

    first = step({"reasoning": "账单 first"})
    c1, c2 = call("call_1", first), call("call_2", first)
    first.tool_calls = [c1, c2]
    got.append(await store.record_calls(run, first, [c1, c2], usage={"input_tokens": 3}))
    got.append(
        await store.store_output(c1, "ok", is_error=False, complete=None, thread_id=thread.id)
    )
    got.append(
        await store.store_output(c2, "boom", is_error=True, complete=first, thread_id=thread.id)
    )
    empty = step()
    got.append(await store.record_calls(run, empty, [], usage={"input_tokens": 5}))
    last = step()
    c3 = call("call_3", last)
    got.append(await store.record_calls(run, last, [c3], usage={"input_tokens": 8}))
    got.append(
        await store.store_output(c3, "done", is_error=False, complete=last, thread_id=thread.id)
    )
    return run, got


async def _rows(store: Store, run: Run) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the run's calls wrote, ids of steps as their seq (they differ by path)."""

    def work(conn: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
        steps = conn.execute(
            sa.select(run_steps).where(run_steps.c.run_id == run.id).order_by(run_steps.c.seq)
        ).all()
        seq = {r.id: r.seq for r in steps}
        calls = conn.execute(
            sa.select(tool_calls).where(tool_calls.c.run_id == run.id).order_by(tool_calls.c.seq)
        ).all()
        log = conn.execute(
            sa.select(status_log).where(status_log.c.run_id == run.id).order_by(status_log.c.id)
        ).all()
        usage = conn.execute(sa.select(runs.c.usage).where(runs.c.id == run.id)).scalar()
        return {
            "steps": [(r.seq, *r[2:]) for r in steps],
            "calls": [(r.id, seq[r.step_id], *r[3:]) for r in calls],
            # The run's own rows (created, started) are not the calls' writes: no time.
            "log": [(seq.get(r.step_id), r.status, r.at if r.step_id else None) for r in log],
            "usage": [(usage,)],
        }

    return await store.db.read(work)


async def test_one_statement_writes_what_the_separate_statements_write(
    store: Store, fixed_now: datetime
) -> None:
    assert store.db.folds_writes
    folded_run, folded = await _play(store, "test:folded")
    store.db.folds_writes = False  # type: ignore[misc]  # the SQLite path, on PostgreSQL
    try:
        separate_run, separate = await _play(store, "test:separate")
    finally:
        store.db.folds_writes = True  # type: ignore[misc]

    folded_rows, separate_rows = await _rows(store, folded_run), await _rows(store, separate_run)
    assert folded_rows == separate_rows
    # Two rows of the run (queued, in_progress), one per new step, one per completed step.
    assert [len(folded_rows[k]) for k in ("steps", "calls", "log")] == [3, 3, 2 + 3 + 2]
    assert folded_rows["steps"][0][-1] == {"reasoning": "账单 first"}  # details as JSON
    assert folded_rows["steps"][1][-1] is None  # no details: SQL NULL, as before
    assert folded_rows["usage"] == [({"input_tokens": 8},)]
    # The contexts: the thread (its own id and key differ) and its files.
    for f, s in zip(folded, separate, strict=True):
        assert [x.name for x in f.files] == [x.name for x in s.files] == ["s.csv"]
        assert f.files[0].summary == s.files[0].summary == "sales"
        assert f.thread.id == folded_run.thread_id and s.thread.id == separate_run.thread_id


async def _answer(store: Store, key: str, message: bool, complete: bool, raced: bool) -> Run:
    """A run answered by finish_message (with the assistant message or an empty answer,
    completing the run or not; ``raced``: someone else moved it to cancelling first)."""
    thread = await store.get_or_create_thread(key)
    await store.add_message(thread.id, "user", "q")
    run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    await store.set_run_status(run, RunStatus.IN_PROGRESS)
    if raced:
        await store.set_run_status(await store.get_run(run.id), RunStatus.CANCELLING)
    step = RunStep(id=new_id("step"), run_id=run.id, type=StepType.MESSAGE_CREATION)
    step.created_at, step.details = AT, {"reasoning": "想"} if message else None
    answer = store.finish_message(
        run, step, "答案", message_id=new_id("msg") if message else None,
        usage={"output_tokens": 4}, complete={"incomplete_details": None} if complete else None,
    )  # fmt: skip
    if raced:
        with pytest.raises(IllegalTransition, match="is cancelling, not in_progress"):
            await answer
    else:
        await answer
    return run


async def _answer_rows(store: Store, run: Run) -> dict[str, list[tuple[Any, ...]]]:
    rows = await _rows(store, run)

    def work(conn: sa.Connection) -> list[tuple[Any, ...]]:
        q = sa.select(messages.c.role, messages.c.text, messages.c.run_id.is_(None))
        q = q.where(messages.c.thread_id == run.thread_id).order_by(messages.c.seq)
        got = [tuple(r) for r in conn.execute(q)]
        r = conn.execute(sa.select(runs).where(runs.c.id == run.id)).one()
        return [*got, (r.status, r.completed_at is not None, r.incomplete_details)]

    rows["messages and run"] = await store.db.read(work)
    return rows


@pytest.mark.parametrize(
    ("message", "complete", "raced"),
    [(True, True, False), (False, True, False), (True, False, False), (True, True, True)],
)
async def test_an_answer_in_one_statement_writes_what_the_separate_statements_write(
    store: Store, fixed_now: datetime, message: bool, complete: bool, raced: bool
) -> None:
    shape = f"{message}:{complete}:{raced}"
    folded = await _answer(store, f"test:folded:{shape}", message, complete, raced)
    store.db.folds_writes = False  # type: ignore[misc]
    try:
        separate = await _answer(store, f"test:separate:{shape}", message, complete, raced)
    finally:
        store.db.folds_writes = True  # type: ignore[misc]
    folded_rows = await _answer_rows(store, folded)
    assert folded_rows == await _answer_rows(store, separate)
    status = "cancelling" if raced else "completed" if complete else "in_progress"
    assert folded_rows["messages and run"][-1][0] == status
    # The step's two rows, then the run's own when it moved (after the run's earlier rows).
    moved = [(None, "completed", None)] if complete and not raced else []
    assert folded_rows["log"][-2 - len(moved) :] == [
        (0, "in_progress", AT),
        (0, "completed", AT + timedelta(seconds=5)),
        *moved,
    ]
    assert len(folded_rows["messages and run"]) == 2 + message  # the question, the answer


async def test_a_one_statement_write_that_fails_writes_nothing(store: Store) -> None:
    thread = await store.get_or_create_thread("test:fails")
    run = await store.create_run(Run(id=new_id("run"), thread_id=thread.id, model="m"))
    first = RunStep(id=new_id("step"), run_id=run.id, type=StepType.TOOL_CALLS)
    taken = ToolCall("call_1", run.id, first.id, "t", "{}")
    await store.record_calls(run, first, [taken], usage={"n": 1})
    before = await _rows(store, run)

    again = RunStep(id=new_id("step"), run_id=run.id, type=StepType.TOOL_CALLS)
    clash = ToolCall("call_1", run.id, again.id, "t", "{}")  # the same call id in the run
    with pytest.raises(IntegrityError):
        await store.record_calls(run, again, [clash], usage={"n": 2})
    assert await _rows(store, run) == before  # no step, no log row, usage unchanged


async def test_write_alone_retries_a_statement_on_a_connection_known_dead() -> None:
    """The pooled connection was killed and asyncpg has seen it close: the statement never
    went out, so it is tried once more on a fresh connection and written once."""
    database = Database(db.create_engine(PG_URL))
    pid = Prepared(sa.select(sa.func.pg_backend_pid()))
    try:
        first = await database.read(lambda conn: pid.scalar(conn, {}))
        await terminate(first)
        await _until_closed(database)
        assert await database.write_alone(lambda conn: pid.scalar(conn, {})) != first
    finally:
        await database.close()


async def test_write_alone_does_not_retry_a_statement_that_may_have_gone_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection dies while the statement is out: asyncpg saw it open when the statement
    was sent (its first ``is_closed`` says False) and closed by the time the error came. The
    server may have committed it, so the error is raised and the statement is not sent
    again, though SQLAlchemy calls it a disconnect."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    database = Database(db.create_engine(PG_URL))
    pid = Prepared(sa.select(sa.func.pg_backend_pid()))
    sent: list[int] = []
    looks: list[bool] = []

    def is_closed(self: Any) -> bool:
        looks.append(True)
        return len(looks) > 1  # open at the look before sending, closed from then on

    def work(conn: sa.Connection) -> Any:
        sent.append(1)
        return pid.scalar(conn, {})

    try:
        first = await database.read(lambda conn: pid.scalar(conn, {}))
        await terminate(first)
        await _until_closed(database)
        monkeypatch.setattr(asyncpg.Connection, "is_closed", is_closed)
        with pytest.raises(DBAPIError) as raised:
            await database.write_alone(work)
        assert raised.value.connection_invalidated  # a disconnect, as SQLAlchemy sees it
        assert sent == [1]  # and still not sent again
        monkeypatch.undo()
        assert await database.write_alone(work) != first  # the pool got a fresh connection
    finally:
        await database.close()


async def _until_closed(database: Database) -> None:
    """Wait until the pooled connection's asyncpg protocol has seen the server close it."""
    import asyncio

    def closed(conn: sa.Connection) -> bool:
        return bool(conn.connection.driver_connection.is_closed())

    for _ in range(200):
        # A look at the pooled connection without a statement: checkout, check, checkin.
        if await _peek(database, closed):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("asyncpg never saw the connection close")


async def _peek(database: Database, check: Any) -> bool:
    from sqlalchemy.util.concurrency import greenlet_spawn

    def look() -> bool:
        with database.engine.sync_engine.connect() as conn:
            return bool(check(conn))

    return bool(await greenlet_spawn(look))


async def _started(store: Store, key: str, waiting: bool, expires: bool, outcome: str) -> Any:
    """start_run on a thread whose state gives ``outcome``: ``created`` (a user message to
    answer), ``nothing`` (every message answered) or ``waits`` (a run waits for approval)."""
    thread = await store.get_or_create_thread(key)
    await store.add_message(thread.id, "user", "q1")
    if outcome in ("nothing", "waits"):
        earlier = await store.start_run(Run(new_id("run"), thread.id, "m"), expires_at=None)
        assert earlier.run is not None
        if outcome == "waits":
            await store.set_run_status(earlier.run, RunStatus.IN_PROGRESS)
            await store.set_run_status(earlier.run, RunStatus.REQUIRES_ACTION)
            await store.add_message(thread.id, "user", "q2")
    await store.add_message(thread.id, "user", "q3") if outcome == "created" else None
    run = Run(new_id("run"), thread.id, "m")
    run.created_at = AT
    at = AT + timedelta(minutes=10) if expires else None
    started = await store.start_run(run, expires_at=at, stop_at_waiting=waiting, window=5)
    return started, run


async def _runs_and_log(store: Store, run: Run) -> list[tuple[Any, ...]]:
    """The thread's runs and their log rows; times only of ``run``'s rows (the earlier runs
    were made at the wall clock's time)."""
    thread_id = run.thread_id

    def work(conn: sa.Connection) -> list[tuple[Any, ...]]:
        q = sa.select(runs).where(runs.c.thread_id == thread_id).order_by(runs.c.created_at)
        listed = conn.execute(q).all()
        order = {r.id: n for n, r in enumerate(listed)}
        log = conn.execute(
            sa.select(status_log)
            .where(status_log.c.run_id.in_(list(order)))
            .order_by(status_log.c.id)
        ).all()
        # Message seqs are numbered across threads: a run's upto as the message's place.
        q = sa.select(messages.c.seq).where(messages.c.thread_id == thread_id)
        place = {seq: n for n, seq in enumerate(sorted(conn.execute(q).scalars()), 1)}
        return [
            *((order[r.id], r.status, place[r.upto_seq], r.expires_at, r.usage) for r in listed),
            *((order[r.run_id], r.status, r.at if r.run_id == run.id else None) for r in log),
        ]

    return await store.db.read(work)


@pytest.mark.parametrize("outcome", ["created", "nothing", "waits"])
@pytest.mark.parametrize(("waiting", "expires"), [(True, True), (False, True), (False, False)])
async def test_a_run_started_in_one_statement_is_what_the_separate_statements_start(
    store: Store, fixed_now: datetime, waiting: bool, expires: bool, outcome: str
) -> None:
    shape = f"{waiting}:{expires}:{outcome}"
    folded, run = await _started(store, f"test:folded:{shape}", waiting, expires, outcome)
    store.db.folds_writes = False  # type: ignore[misc]
    try:
        separate, other = await _started(store, f"test:separate:{shape}", waiting, expires, outcome)
    finally:
        store.db.folds_writes = True  # type: ignore[misc]
    assert await _runs_and_log(store, run) == await _runs_and_log(store, other)
    # What start_run returned, and the run in memory, are the same on both paths.
    assert (folded.run is None, folded.waiting is None, folded.context is None) == (
        separate.run is None,
        separate.waiting is None,
        separate.context is None,
    )
    assert (run.status, run.started_at, run.expires_at) == (
        other.status,
        other.started_at,
        other.expires_at,
    )
    assert (run.upto_seq == 0) == (other.upto_seq == 0)  # 0: not set (nothing created)
    if outcome == "waits" and waiting:
        assert folded.waiting is not None and folded.waiting.status == RunStatus.REQUIRES_ACTION
    if outcome == "created" or (outcome == "waits" and not waiting):
        assert folded.run is run and separate.run is other
        assert run.upto_seq == (await store.list_messages(run.thread_id))[-1].seq
        assert run.status == (RunStatus.IN_PROGRESS if expires else RunStatus.QUEUED)
        if expires:  # the first request's context, read after the statement
            assert folded.context is not None and separate.context is not None
            mine, theirs = folded.context.history, separate.context.history
            assert mine is not None and theirs is not None
            texts = [m.text for m in mine.messages]
            assert texts == [m.text for m in theirs.messages]
            assert texts == (["q1", "q3"] if outcome == "created" else ["q1", "q2"])
            assert [r.status for r in mine.runs] == [r.status for r in theirs.runs]
    else:
        assert run.status == RunStatus.QUEUED and run.started_at is None
