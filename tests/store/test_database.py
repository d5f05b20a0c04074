"""core.store.base.Database: one function of a connection is one transaction (issue 12).

SQLite runs it on the store's own worker thread with the write lock taken up front;
PostgreSQL runs it on the async engine and, having no pre-ping, retries once on a connection
the server dropped."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.domain import utcnow
from core.store import Store, db, tables
from core.store.base import Database, SqliteDatabase
from core.store.fast import Prepared
from tests.pg import PG_URL


class Boom(Exception):
    pass


def _another_writer(path: os.PathLike[str] | str) -> str:
    """What another process gets when it asks for the write lock now."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        return "other process got the lock"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


async def test_sqlite_work_runs_on_one_worker_thread_not_the_loop(store: Store) -> None:
    assert isinstance(store.db, SqliteDatabase)
    seen: set[int] = set()

    def work(conn: sa.Connection) -> int:
        seen.add(threading.get_ident())
        return int(conn.execute(sa.text("SELECT 41 + 1")).scalar_one())

    for _ in range(5):
        assert await store.db.read(work) == 42
        assert await store.db.write(work) == 42
    assert len(seen) == 1
    assert threading.get_ident() not in seen


async def test_a_write_that_raises_leaves_nothing_behind(store: Store) -> None:
    thread = await store.get_or_create_thread("console:rollback")

    def work(conn: sa.Connection) -> None:
        conn.execute(sa.text("UPDATE threads SET title = 'half' WHERE id = :i"), {"i": thread.id})
        raise Boom

    with pytest.raises(Boom):
        await store.db.write(work)
    assert (await store.get_thread(thread.id)).title is None
    # The worker's one connection is usable afterwards (no transaction left open on it).
    await store.update_thread(thread.id, title="whole")
    assert (await store.get_thread(thread.id)).title == "whole"


async def test_sqlite_write_holds_the_write_lock_from_its_first_statement(store: Store) -> None:
    """BEGIN IMMEDIATE: another process cannot write while a write transaction that has
    only read so far is open, so that transaction never fails to upgrade its lock."""
    path = db.sqlite_path(str(store.engine.url))
    assert path is not None
    outcome: list[str] = []

    def work(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT count(*) FROM threads")).scalar_one()
        outcome.append(_another_writer(path))

    await store.db.write(work)
    assert outcome == ["database is locked"]


async def test_closed_store_stops_its_worker(settings) -> None:  # type: ignore[no-untyped-def]
    st = await Store.open(settings.db_url)
    assert isinstance(st.db, SqliteDatabase)
    await st.db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
    await st.close()
    assert not any(t.name.startswith("tallybot-sqlite") and t.is_alive() for t in _threads(st))


def _threads(st: Store) -> list[threading.Thread]:
    assert isinstance(st.db, SqliteDatabase)
    return list(st.db.worker._threads)


async def test_postgres_connection_dropped_by_the_server_is_retried_once() -> None:
    """No pre-ping: a pooled connection the server terminated fails on first use; the
    transaction runs again on a fresh connection instead of failing the caller."""
    database = Database(db.create_engine(PG_URL))
    admin = create_async_engine(PG_URL, poolclass=NullPool)
    try:
        pid = await database.read(
            lambda conn: conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        )
        async with admin.begin() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        again = await database.write(
            lambda conn: conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        )
        assert again != pid
    finally:
        await database.close()
        await admin.dispose()


async def test_postgres_read_on_a_connection_dropped_by_the_server_is_retried_once() -> None:
    """The same for a read, which runs in autocommit: the dead connection fails on the
    read's first statement, not on a BEGIN."""
    database = Database(db.create_engine(PG_URL))
    admin = create_async_engine(PG_URL, poolclass=NullPool)

    def pid(conn: sa.Connection) -> int:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    try:
        first = await database.read(pid)
        async with admin.begin() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": first})
        assert await database.read(pid) != first
    finally:
        await database.close()
        await admin.dispose()


async def test_postgres_errors_other_than_a_dead_connection_are_not_retried() -> None:
    database = Database(db.create_engine(PG_URL))
    calls: list[int] = []

    def work(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(sa.text("SELECT no_such_column FROM pg_class"))

    try:
        with pytest.raises(sa.exc.ProgrammingError):
            await database.write(work)
        assert calls == [1]
    finally:
        await database.close()


async def test_postgres_write_whose_commit_was_cut_off_is_raised_not_run_again() -> None:
    """Once the work has run, a dead connection at COMMIT may mean the server committed:
    running the work again could write it twice, so the error goes to the caller."""
    database = Database(db.create_engine(PG_URL))
    calls: list[int] = []

    def work(conn: sa.Connection) -> None:
        calls.append(1)
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with conn.engine.connect() as other:  # the connection dies between work and COMMIT
            other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    try:
        with pytest.raises(sa.exc.DBAPIError) as raised:
            await database.write(work)
        assert raised.value.connection_invalidated
        assert calls == [1]
    finally:
        await database.close()


async def test_postgres_read_runs_without_a_transaction_and_write_within_one() -> None:
    """Reads save BEGIN and ROLLBACK (autocommit; at READ COMMITTED a read sees the same rows
    either way); a write's statements still share one transaction."""
    database = Database(db.create_engine(PG_URL))

    def state(conn: sa.Connection) -> tuple[bool, int, int]:
        first = conn.execute(sa.text("SELECT txid_current()")).scalar_one()
        second = conn.execute(sa.text("SELECT txid_current()")).scalar_one()
        raw = conn.connection.driver_connection
        assert raw is not None
        return raw.is_in_transaction(), first, second

    try:
        in_tx, first, second = await database.read(state)
        assert not in_tx and first != second
        in_tx, first, second = await database.write(state)
        assert in_tx and first == second
    finally:
        await database.close()


async def test_postgres_write_that_raises_is_rolled_back_and_its_connection_reused() -> None:
    database = Database(db.create_engine(PG_URL))
    table = f"tallybot_test_rollback_{os.getpid()}"

    def half(conn: sa.Connection) -> None:
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
        raise Boom

    def rows(conn: sa.Connection) -> int:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

    try:
        await database.write(lambda conn: conn.execute(sa.text(f"CREATE TABLE {table} (a int)")))
        with pytest.raises(Boom):
            await database.write(half)
        assert await database.read(rows) == 0
        await database.write(lambda conn: conn.execute(sa.text(f"INSERT INTO {table} VALUES (2)")))
        assert await database.read(rows) == 1
    finally:
        await database.write(lambda conn: conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}")))
        await database.close()


# --- group commit (SQLite) --------------------------------------------------------------


async def _grouped(store: Store, works: list) -> list:  # type: ignore[type-arg]
    """Run ``works`` as writes queued while the worker is busy, so they share a transaction;
    the outcome of each (its result or its exception)."""
    import asyncio

    release = threading.Event()
    busy = asyncio.ensure_future(store.db.read(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)  # the worker is inside the read now
    pending = [asyncio.ensure_future(store.db.write(w)) for w in works]
    await asyncio.sleep(0)
    assert isinstance(store.db, SqliteDatabase)
    assert [job.write for job in store.db._queue] == [True] * len(works)  # behind the read
    release.set()
    await busy
    return await asyncio.gather(*pending, return_exceptions=True)


def _set_title(thread_id: str, title: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
    def work(conn: sa.Connection) -> str:
        conn.execute(
            sa.text("UPDATE threads SET title = :t WHERE id = :i"), {"t": title, "i": thread_id}
        )
        if fail:
            raise Boom(title)
        return title

    return work


async def test_writes_queued_together_commit_together_and_one_that_raises_fails_alone(
    store: Store,
) -> None:
    threads = [await store.get_or_create_thread(f"console:group{i}") for i in range(6)]
    commits: list[int] = []
    sa.event.listen(store.db.sync, "commit", lambda conn: commits.append(1))  # type: ignore[attr-defined]
    works = [_set_title(t.id, f"t{i}", fail=i == 2) for i, t in enumerate(threads)]
    outcome = await _grouped(store, works)
    assert [o if isinstance(o, str) else type(o) for o in outcome] == [
        "t0",
        "t1",
        Boom,
        "t3",
        "t4",
        "t5",
    ]
    assert len(commits) == 1  # six writes, one COMMIT
    titles = [(await store.get_thread(t.id)).title for t in threads]
    assert titles == ["t0", "t1", None, "t3", "t4", "t5"]  # the failed one left nothing


async def test_an_error_that_ends_the_group_transaction_fails_only_what_ran_in_it(
    store: Store,
) -> None:
    """SQLite rolls the whole transaction back on some errors (a full disk): the writes that
    ran before in it are lost and say so; those after it run in a new transaction."""
    threads = [await store.get_or_create_thread(f"console:lost{i}") for i in range(4)]

    def disk_full(conn: sa.Connection) -> None:
        conn.connection.driver_connection.execute("ROLLBACK")  # type: ignore[union-attr]
        raise sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("disk is full"))

    works = [
        _set_title(threads[0].id, "a"),
        disk_full,
        _set_title(threads[2].id, "c"),
        _set_title(threads[3].id, "d"),
    ]
    outcome = await _grouped(store, works)
    assert isinstance(outcome[0], sa.exc.OperationalError)
    assert "nothing was written" in str(outcome[0])
    assert isinstance(outcome[1], sa.exc.OperationalError) and "disk is full" in str(outcome[1])
    assert outcome[2:] == ["c", "d"]
    titles = [(await store.get_thread(t.id)).title for t in threads]
    assert titles == [None, None, "c", "d"]


async def test_a_queued_write_whose_caller_gave_up_does_not_run(store: Store) -> None:
    import asyncio

    threads = [await store.get_or_create_thread(f"console:gaveup{i}") for i in range(3)]
    release = threading.Event()
    busy = asyncio.ensure_future(store.db.read(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)
    pending = [
        asyncio.ensure_future(store.db.write(_set_title(t.id, f"t{i}")))
        for i, t in enumerate(threads)
    ]
    await asyncio.sleep(0)
    pending[1].cancel()
    release.set()
    await busy
    outcome = await asyncio.gather(*pending, return_exceptions=True)
    assert outcome[0] == "t0" and outcome[2] == "t2"
    assert isinstance(outcome[1], asyncio.CancelledError)
    titles = [(await store.get_thread(t.id)).title for t in threads]
    assert titles == ["t0", None, "t2"]


# --- the worker's own transactions (SQLite, issue 12) ----------------------------------


async def test_sqlite_read_is_one_snapshot(store: Store) -> None:
    """A read's statements share one transaction: a write another process commits between
    two of them is not seen by the second (WAL snapshot), only by the next read."""
    thread = await store.get_or_create_thread("console:snapshot")
    path = db.sqlite_path(str(store.engine.url))
    assert path is not None
    by_id = Prepared(
        sa.select(tables.threads.c.title).where(tables.threads.c.id == sa.bindparam("i"))
    )

    def work(conn: sa.Connection) -> tuple[str | None, str | None]:
        before = by_id.scalar(conn, {"i": thread.id})
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("UPDATE threads SET title = 'other' WHERE id = ?", (thread.id,))
        other.close()
        return before, by_id.scalar(conn, {"i": thread.id})

    assert await store.db.read(work) == (None, None)
    assert (await store.get_thread(thread.id)).title == "other"


async def test_sqlite_fast_write_holds_the_lock_and_is_durable_when_answered(
    store: Store,
) -> None:
    """A write whose statements all bypass SQLAlchemy's execution still opens with BEGIN
    IMMEDIATE, and once answered another connection sees it (it was committed)."""
    path = db.sqlite_path(str(store.engine.url))
    assert path is not None
    thread = await store.get_or_create_thread("console:fastlock")
    outcome: list[str] = []
    set_title = Prepared(tables.threads.update().where(tables.threads.c.id == sa.bindparam("i")))

    def work(conn: sa.Connection) -> int:
        outcome.append(_another_writer(path))
        return set_title.run(conn, {"i": thread.id, "title": "fast", "updated_at": utcnow()})

    assert await store.db.write(work) == 1
    assert outcome == ["database is locked"]
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT title FROM threads WHERE id = ?", (thread.id,)).fetchone()
    finally:
        other.close()
    assert (await store.get_thread(thread.id)).title == "fast"


async def test_sqlite_worker_checks_its_connection_out_once(store: Store) -> None:
    checkouts: list[int] = []
    sa.event.listen(store.db.sync.pool, "checkout", lambda *a: checkouts.append(1))  # type: ignore[attr-defined]
    thread = await store.get_or_create_thread("console:once")
    for i in range(5):
        await store.update_thread(thread.id, title=str(i))
        await store.get_thread(thread.id)
    assert checkouts == []  # the worker's connection was checked out before; kept since


async def test_sqlite_reads_queued_together_are_answered_and_one_that_raises_fails_alone(
    store: Store,
) -> None:
    import asyncio

    thread = await store.get_or_create_thread("console:reads")
    release = threading.Event()
    busy = asyncio.ensure_future(store.db.read(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)  # the worker is inside that read

    def boom(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT no_such_column FROM threads"))

    pending = [
        asyncio.ensure_future(store.get_thread(thread.id)),
        asyncio.ensure_future(store.db.read(boom)),
        asyncio.ensure_future(store.thread_by_key("console:reads")),
    ]
    await asyncio.sleep(0)
    assert isinstance(store.db, SqliteDatabase)
    assert [job.write for job in store.db._queue] == [False] * 3
    release.set()
    await busy
    first, failed, third = await asyncio.gather(*pending, return_exceptions=True)
    assert isinstance(failed, sa.exc.OperationalError)
    assert first.id == thread.id and third is not None and third.id == thread.id  # type: ignore[union-attr]


async def test_sqlite_calls_queued_together_run_in_their_order(store: Store) -> None:
    """A read queued behind a write (neither awaited yet) sees that write; a write queued
    behind a read is not seen by it."""
    import asyncio

    thread = await store.get_or_create_thread("console:order")
    release = threading.Event()
    busy = asyncio.ensure_future(store.db.read(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)
    before = asyncio.ensure_future(store.get_thread(thread.id))
    write = asyncio.ensure_future(store.update_thread(thread.id, title="written"))
    after = asyncio.ensure_future(store.get_thread(thread.id))
    await asyncio.sleep(0)
    release.set()
    await busy
    await write
    assert ((await before).title, (await after).title) == (None, "written")
