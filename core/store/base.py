"""The engine holder every repository mixin of :class:`core.store.store.Store` shares, and the
one way a repository touches the database: :meth:`Database.read` / :meth:`Database.write`.

A repository method hands the database one synchronous function of a SQLAlchemy
:class:`~sqlalchemy.Connection`; that function is one transaction (issue 12). How it runs
depends on the backend:

- SQLite: on the store's own worker thread, through a synchronous engine (pysqlite) on the same
  file. One thread hop per transaction instead of several per statement (aiosqlite hops to its
  thread for every cursor call), and every transaction of the process runs on that one thread,
  so they never wait on each other's locks. Writes open with ``BEGIN IMMEDIATE``: the write lock
  is taken up front, so a transaction that read first never fails to upgrade when another
  process (the CLI, a second bot) wrote in between.
- PostgreSQL: on the async engine (asyncpg) through ``run_sync``: no thread at all, one round
  trip per statement. No ``pool_pre_ping`` (a round trip per checkout); a connection found dead
  is invalidated and the transaction is tried once more on a fresh one
  (:func:`core.store.db.create_engine` recycles connections after five minutes).

The async engine stays available as ``Store.engine`` for migrations, health checks and tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Self, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.store.db import create_engine, sqlite_pragmas, upgrade

T = TypeVar("T")
Work = Callable[[sa.Connection], T]

log = logging.getLogger(__name__)


class Database:
    """Runs one function of a connection as one transaction; see the module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def read(self, work: Work[T]) -> T:
        """``work`` in a transaction that is rolled back afterwards (it should only read)."""
        for attempt in (1, 2):
            try:
                async with self.engine.connect() as conn:
                    return await conn.run_sync(work)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("database connection was dead; reading again on a new one")
        raise AssertionError("unreachable")

    async def write(self, work: Work[T]) -> T:
        """``work`` in a transaction committed when it returns, rolled back if it raises."""
        for attempt in (1, 2):
            done = False
            try:
                async with self.engine.begin() as conn:
                    result = await conn.run_sync(work)
                    done = True
                return result
            except DBAPIError as exc:
                # A dead pooled connection fails on its first statement, before anything
                # was written. Once ``work`` has run, the COMMIT may have reached the server
                # even though its answer did not: that is raised, never written twice.
                if attempt == 2 or done or not exc.connection_invalidated:
                    raise
                log.warning("database connection was dead; writing again on a new one")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.engine.dispose()


class SqliteDatabase(Database):
    """SQLite: a synchronous engine driven from one worker thread of this store.

    Writes are committed in groups: every write queued while the worker was busy runs in the
    worker's next transaction, each in its own SAVEPOINT, and one COMMIT makes them all
    durable (a COMMIT costs far more than the statements of one turn's write). A write that
    raises rolls back to its savepoint and fails alone; the others commit. No write is
    answered before the COMMIT that holds it returned. One write alone is a plain transaction.
    """

    GROUP = 64  # writes per transaction at most: bounds how long the write lock is held

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        url = engine.url.set(drivername="sqlite+pysqlite")
        # One connection, used only by the worker thread.
        self.sync = sa.create_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
        event.listen(self.sync, "connect", _autocommit_driver)
        event.listen(self.sync, "connect", sqlite_pragmas)
        event.listen(self.sync, "begin", _begin)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="tallybot-sqlite")
        self._writes: deque[_Write] = deque()  # appended on the loop, taken on the worker

    async def _on_worker(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn)

    async def read(self, work: Work[T]) -> T:
        def run() -> T:
            with self.sync.connect() as conn:
                try:
                    return work(conn)
                finally:
                    conn.rollback()

        return await self._on_worker(run)

    async def write(self, work: Work[T]) -> T:
        done: Future[Any] = Future()
        self._writes.append((work, done))
        # Every write is followed by a drain on the worker; the first one takes all queued
        # writes, the later ones may find nothing left.
        self.worker.submit(self._drain)
        return cast(T, await asyncio.wrap_future(done))

    def _drain(self) -> None:
        group: list[_Write] = []
        while self._writes and len(group) < self.GROUP:
            group.append(self._writes.popleft())
        if not group:
            return
        with self.sync.connect().execution_options(tallybot_write=True) as conn:
            if len(group) == 1:
                _run_alone(conn, *group[0])
                return
            ran: list[tuple[Future[Any], Any]] = []
            try:
                trans = conn.begin()
            except BaseException as exc:  # the lock was not to be had: nothing ran
                for _, done in group:
                    done.set_exception(exc)
                return
            for index, (work, done) in enumerate(group):
                if not _run_saved(conn, work, done, ran):
                    # The error ended the whole transaction (SQLite does that for a full
                    # disk, I/O errors, ...): what ran before it is gone with it, and the
                    # writes not run yet go to the next transaction.
                    trans.rollback()
                    error = done.exception()
                    for earlier, _ in ran:
                        earlier.set_exception(_lost(error))
                    self._writes.extendleft(reversed(group[index + 1 :]))
                    self.worker.submit(self._drain)
                    return
            try:
                trans.commit()
            except BaseException as exc:
                for done, _ in ran:
                    done.set_exception(exc)
                return
        for done, result in ran:
            done.set_result(result)

    async def close(self) -> None:
        # The connection belongs to the worker thread: it is closed there.
        await self._on_worker(self.sync.dispose)
        self.worker.shutdown(wait=True)
        await super().close()


_Write = tuple[Work[Any], "Future[Any]"]


def _run_alone(conn: sa.Connection, work: Work[Any], done: Future[Any]) -> None:
    """One write in a transaction of its own."""
    try:
        with conn.begin():
            result = work(conn)
    except BaseException as exc:
        done.set_exception(exc)
    else:
        done.set_result(result)


def _run_saved(
    conn: sa.Connection, work: Work[Any], done: Future[Any], ran: list[tuple[Future[Any], Any]]
) -> bool:
    """One write of a group in its own SAVEPOINT; appended to ``ran`` when it succeeded, its
    future failed when it raised. False when the error also ended the enclosing transaction.

    The savepoint is the driver's, under one fixed name (SQLAlchemy's ``begin_nested`` names
    each one anew, so SQLite prepares each anew): the statements of ``work`` go through
    ``conn`` as always, and one nested inside it still works."""
    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        raw.execute("SAVEPOINT tallybot_write")
        result = work(conn)
    except BaseException as exc:
        done.set_exception(exc)
        if not raw.in_transaction:
            return False
        raw.execute("ROLLBACK TO tallybot_write")
        raw.execute("RELEASE tallybot_write")
        return True
    raw.execute("RELEASE tallybot_write")
    ran.append((done, result))
    return True


def _lost(error: BaseException | None) -> BaseException:
    """The error of a write that ran, but in a transaction another write's error ended."""
    cause = error if error is not None else RuntimeError("transaction ended")
    exc = sa.exc.OperationalError(
        "another write of the same transaction failed and ended it; nothing was written",
        None,
        cause,
    )
    exc.__cause__ = cause
    return exc


def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own implicit BEGIN is switched off; _begin emits the right one (SQLAlchemy's
    # documented recipe for SQLite transactions).
    dbapi_conn.isolation_level = None


def _begin(conn: sa.Connection) -> None:
    write = conn.get_execution_options().get("tallybot_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def database(engine: AsyncEngine) -> Database:
    """The :class:`Database` for ``engine``'s backend."""
    if engine.dialect.name == "sqlite":
        return SqliteDatabase(engine)
    return Database(engine)


class StoreBase:
    """Owns the database: open (with migrations), close, and the dialect name."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.db = database(engine)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Self:
        """Connect to ``url`` and, unless ``migrate`` is False, apply migrations first."""
        engine = create_engine(url)
        if migrate:
            await upgrade(engine)
        return cls(engine)

    async def close(self) -> None:
        """Close the worker (SQLite) and dispose of the connection pools."""
        await self.db.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: the few queries that differ by backend branch on it."""
        return self.engine.dialect.name
