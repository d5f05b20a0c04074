"""core.store.fast: the hot path's statements run on the driver's cursor (issue 12) return what
SQLAlchemy returns for the same statements, write what it writes, and fail as it fails -- on
both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from core.domain import FileRef, Run, RunStatus, StepType, ToolCall, new_id
from core.store import Store, db, history, leases, platform, runs, threads, turns
from core.store.base import Database
from core.store.fast import Prepared
from core.store.tables import Money, UTCDateTime
from core.store.tables import runs as runs_table
from core.store.tables import threads as threads_table
from tests.pg import PG_URL, terminate

_probe_md = sa.MetaData()
probe = sa.Table(
    "fast_probe",
    _probe_md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(40), nullable=False, unique=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("maybe_at", UTCDateTime),
    sa.Column("money", Money),
    sa.Column("data", sa.JSON),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("note", sa.Text),
)
_INSERT = Prepared(probe.insert())
_SELECT = Prepared(
    sa.select(probe)
    .where(
        probe.c.at <= sa.bindparam("w_at", type_=UTCDateTime()),
        probe.c.flag.in_([sa.literal(True), sa.literal(False)]),
    )
    .order_by(probe.c.name)
    .limit(10)
)
_ROWS = [
    {
        "at": datetime(2026, 12, 2, 9, 30, 1, 123456, tzinfo=timezone(timedelta(hours=8))),
        "maybe_at": None,
        "money": Decimal("12.30"),
        "data": {"k": [1, "二", None], "n": 1.5},
        "flag": True,
        "note": "花 x",
    },
    {
        "at": datetime(2026, 1, 2, 3, 4, 5),  # naive: taken as UTC, as UTCDateTime says
        "maybe_at": datetime(2026, 1, 2, tzinfo=UTC),
        "money": None,
        "data": None,
        "flag": False,
        "note": None,
    },
]


async def _with_probe(store: Store) -> None:
    await store.db.write(lambda conn: _probe_md.create_all(conn))


async def test_rows_written_and_read_as_sqlalchemy_does(any_store: Store) -> None:
    """Aware and naive datetimes, Decimal money, JSON (and JSON null), booleans and NULLs:
    each row written once through SQLAlchemy and once through the fast path reads back the
    same through both, and the fast path's INSERT gives the key SQLAlchemy's would."""
    await _with_probe(any_store)

    def work(conn: sa.Connection) -> list[tuple[Any, Any]]:
        keys = []
        for i, row in enumerate(_ROWS):
            slow = conn.execute(probe.insert(), {**row, "name": f"{i}-sa"}).inserted_primary_key
            fast = _INSERT.insert(conn, {**row, "name": f"{i}-fast"})
            assert slow is not None
            keys.append((slow[0], fast))
        return keys

    keys = await any_store.db.write(work)
    assert [fast - slow for slow, fast in keys] == [1, 1]
    params = {"w_at": datetime(2027, 1, 1, tzinfo=UTC)}

    def read(conn: sa.Connection) -> tuple[list[Any], list[Any]]:
        return conn.execute(_SELECT.stmt, params).all(), _SELECT.all(conn, params)

    slow, fast = await any_store.db.read(read)
    assert len(fast) == 4
    assert [tuple(r) for r in fast] == [tuple(r) for r in slow]
    assert [r._fields for r in fast] == [tuple(r._mapping.keys()) for r in slow]
    by_name = {r.name: r for r in fast}
    for i in range(len(_ROWS)):
        via_sa, via_fast = by_name[f"{i}-sa"], by_name[f"{i}-fast"]
        assert via_fast[2:] == via_sa[2:]  # all but id and name
    first = by_name["0-fast"]
    assert first.at == datetime(2026, 12, 2, 1, 30, 1, 123456, tzinfo=UTC)
    assert first.at.tzinfo is UTC and first.money == Decimal("12.30")
    assert first.data == {"k": [1, "二", None], "n": 1.5} and first.flag is True
    second = by_name["1-fast"]
    assert second.at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (second.money, second.data, second.note, second.flag) == (None, None, None, False)


async def _a_turn_stored(store: Store) -> dict[str, Any]:
    """A thread with a user message, a run with a step and a call, a lease and a kv row:
    the parameters every hot statement of the store takes."""
    thread = await store.get_or_create_thread("console:fast")
    await store.add_message(thread.id, "user", "hello")
    run = Run(id=new_id("run"), thread_id=thread.id, model="m", upto_seq=1)
    await store.create_run(run)
    await store.set_run_status(run, RunStatus.IN_PROGRESS)
    step = await store.add_step(run, StepType.TOOL_CALLS)
    call = ToolCall(id="call_1", run_id=run.id, step_id=step.id, name="t", arguments="{}")
    await store.add_tool_call(step, call)
    await store.kv_set(f"out:{run.id}", "pending")
    await store.kv_set("console:fast", "a kv row under the thread's key")
    await store.take_lease(f"thread:{thread.id}", "me", "replica", 60)
    await store.add_file(
        FileRef(new_id("file"), thread.id, "a.csv", "/x/a.csv", "0" * 64, 3, "text/csv", "table")
    )
    later = Run(id=new_id("run"), thread_id=thread.id, model="m", upto_seq=1)
    await store.create_run(later)  # the window of this one holds the first
    later_step = await store.add_step(later, StepType.TOOL_CALLS)
    later_call = ToolCall(
        id="call_2", run_id=later.id, step_id=later_step.id, name="t", arguments="[]"
    )
    await store.add_tool_call(later_step, later_call)
    return {
        "w_thread": thread.id,
        "w_key": "console:fast",
        "w_run": later.id,
        "w_id": run.id,
        "w_created": later.created_at,
        "w_limit": 5,
        "w_after": 0,
        "w_upto": 5,
        "w_name": f"thread:{thread.id}",
        "w_prefix": "out:",
        "w_value": "pending",
        "w_newest": 3,
    }


def _selects() -> list[tuple[str, Prepared]]:
    found = []
    for module in (turns, threads, runs, history, leases, platform):
        for name, value in vars(module).items():
            if isinstance(value, Prepared) and value.stmt.is_select:
                found.append((f"{module.__name__}.{name}", value))
    return found


async def test_every_hot_select_returns_what_sqlalchemy_returns(any_store: Store) -> None:
    params = await _a_turn_stored(any_store)
    selects = _selects()
    assert len(selects) >= 10

    def work(conn: sa.Connection) -> list[tuple[str, list[Any], list[Any]]]:
        return [
            (name, conn.execute(p.stmt, params).all(), p.all(conn, params)) for name, p in selects
        ]

    compared = await any_store.db.read(work)
    p_of = dict(selects)
    for name, slow, fast in compared:
        assert [tuple(r) for r in fast] == [tuple(r) for r in slow], name
        if all(isinstance(c, sa.Column) for c in p_of[name].stmt.selected_columns):
            assert all(
                r._fields == tuple(s._mapping.keys()) for r, s in zip(fast, slow, strict=True)
            ), name
    assert all(fast for name, _, fast in compared if "UNANSWERED" not in name), [
        name for name, _, fast in compared if not fast
    ]  # every statement found its row: the comparison compared something


async def test_a_duplicate_key_is_sqlalchemys_integrity_error(any_store: Store) -> None:
    """And nothing of the failed write is left; the store's own race handling (create_thread
    finding the winner) still works through it."""
    thread = await any_store.get_or_create_thread("console:dup")
    row = {
        "id": new_id("thread"),
        "key": "console:dup",
        "metadata": {},
        "book": "b",
        "created_at": thread.created_at,
        "updated_at": thread.created_at,
    }

    def work(conn: sa.Connection) -> None:
        threads._INSERT_THREAD.run(conn, {**row, "id": new_id("thread"), "key": "console:other"})
        threads._INSERT_THREAD.run(conn, row)

    with pytest.raises(sa.exc.IntegrityError) as raised:
        await any_store.db.write(work)
    assert not raised.value.connection_invalidated
    assert await any_store.thread_by_key("console:other") is None
    assert (await any_store.create_thread("console:dup")).id == thread.id


async def test_statements_a_fast_path_cannot_run_the_same_are_refused(store: Store) -> None:
    """An expanding IN is rendered per execution, a Python-side default computed per row:
    neither is what a Prepared statement does, so it says so instead of running other SQL."""
    expanding = Prepared(sa.select(runs_table).where(runs_table.c.id.in_(["a", "b"])))
    defaulted = Prepared(threads_table.insert())
    with pytest.raises(ValueError, match="expanding IN"):
        await store.db.read(lambda conn: expanding.all(conn, {}))
    with pytest.raises(ValueError, match="Python default"):
        await store.db.write(lambda conn: defaulted.run(conn, {"id": "t", "key": "k"}))


async def test_statement_listeners_see_the_fast_path(store: Store) -> None:
    """``before_cursor_execute`` listeners (bench/count_turn.py counts with one) still see
    every statement, with its SQL and parameters."""
    seen: list[tuple[str, Any]] = []
    sync = store.db.sync  # type: ignore[attr-defined]

    def on_execute(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        seen.append((statement.split()[0], params))

    sa.event.listen(sync, "before_cursor_execute", on_execute)
    await store.thread_by_key("console:none")
    assert ("SELECT", ["console:none"]) in seen


async def test_postgres_dead_connection_under_the_fast_path_is_invalidated_and_retried() -> None:
    database = Database(db.create_engine(PG_URL))
    pid = Prepared(sa.select(sa.func.pg_backend_pid()))
    try:
        first = await database.read(lambda conn: pid.scalar(conn, {}))
        await terminate(first)
        second = await database.read(lambda conn: pid.scalar(conn, {}))
        assert second != first
        await terminate(second)
        assert await database.write(lambda conn: pid.scalar(conn, {})) not in (first, second)
    finally:
        await database.close()


async def test_postgres_fast_statements_share_the_write_transaction() -> None:
    """On asyncpg the fast path runs on SQLAlchemy's adapter: in a write, inside its
    transaction (the greenlet's synchronous face); in a read, in autocommit."""
    database = Database(db.create_engine(PG_URL))
    txid = Prepared(sa.select(sa.func.txid_current()))

    def twice(conn: sa.Connection) -> tuple[int, int]:
        return txid.scalar(conn, {}), txid.scalar(conn, {})

    try:
        first, second = await database.write(twice)
        assert first == second
        first, second = await database.read(twice)
        assert first != second
    finally:
        await database.close()


async def test_unprocessed_rows_make_the_rows_all_gives_and_key_columns_read_the_same(
    any_store: Store,
) -> None:
    """The history window looks its cache up by ids and seqs of rows it has not processed:
    those must read the same unprocessed, and a row made later is the row ``all`` gives."""
    params = await _a_turn_stored(any_store)
    keys = {
        history._WINDOW_RUNS: {"id": history._RUN_ID, "upto_seq": history._RUN_UPTO},
        history._WINDOW_MESSAGES: {"seq": history._MESSAGE_SEQ, "id": history._MESSAGE_ID},
    }

    def work(conn: sa.Connection) -> list[tuple[Prepared, list[Any], list[Any], list[Any]]]:
        out = []
        for p in keys:
            raw, make = p.unprocessed(conn, params)
            out.append((p, raw, [make(r) for r in raw], p.all(conn, params)))
        return out

    for p, raw, made, rows in await any_store.db.read(work):
        assert rows and made == rows
        for name, index in keys[p].items():
            assert [r[index] for r in raw] == [getattr(r, name) for r in rows], name


async def test_postgres_every_pooled_connection_dead_costs_one_retry_under_the_fast_path() -> None:
    """A server restart kills every pooled connection: the first dead one found marks the
    whole pool stale, as SQLAlchemy's own path does, so the one retry gets a fresh one."""
    database = Database(db.create_engine(PG_URL))
    pid = Prepared(sa.select(sa.func.pg_backend_pid()))

    def slow_pid(conn: sa.Connection) -> int:
        conn.exec_driver_sql("SELECT pg_sleep(0.05)")
        return int(pid.scalar(conn, {}))

    try:
        pids = set(await asyncio.gather(*(database.read(slow_pid) for _ in range(3))))
        assert len(pids) == 3  # three connections in the pool now
        await terminate(*pids)
        assert await database.write(lambda conn: pid.scalar(conn, {})) not in pids
        assert await database.read(lambda conn: pid.scalar(conn, {})) not in pids
    finally:
        await database.close()
