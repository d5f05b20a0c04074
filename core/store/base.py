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
  process (the CLI, a second bot) wrote in between. Writes that queue up while the worker is
  busy share one transaction, each in its own savepoint (group commit, see
  :class:`SqliteDatabase`).
- PostgreSQL: on the async engine (asyncpg), the whole transaction in one greenlet (see
  :class:`Database`): no thread at all, one round trip per statement, reads without BEGIN and
  ROLLBACK, and a write that is one statement (:meth:`Database.write_alone`; the turn's writes
  are, see :mod:`core.store.pg_turns`) without BEGIN and COMMIT. No ``pool_pre_ping`` (a
  round trip per checkout); a connection found dead is invalidated and the transaction is
  tried once more on a fresh one (:func:`core.store.db.create_engine` recycles connections
  after five minutes).

The async engine stays available as ``Store.engine`` for migrations, health checks and tests;
on SQLite it is made only when asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util.concurrency import greenlet_spawn

from core.store.checkpoint import Checkpointer, no_autocheckpoint
from core.store.db import HEAD, create_engine, prepare_sqlite, sqlite_pragmas, upgrade
from core.store.fast import driver_sql

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
Work = Callable[[sa.Connection], T]

log = logging.getLogger(__name__)


class Database:
    """Runs one function of a connection as one transaction; see the module docstring.

    PostgreSQL: each call is one greenlet running the whole transaction on the async
    engine's synchronous face (checkout, statements, COMMIT, checkin), instead of one per
    step through ``AsyncConnection`` (connect, begin, ``run_sync``, commit, close). Reads
    run in autocommit: no BEGIN and no ROLLBACK round trip. At PostgreSQL's READ COMMITTED
    every statement takes its own snapshot even inside a transaction, so a read sees the same
    rows either way (issue 12)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine: AsyncEngine | None = engine
        self.url: URL = engine.url
        self._sync = engine.sync_engine

    @property
    def engine(self) -> AsyncEngine:
        """The async engine (asyncpg; aiosqlite for SQLite, made on first use)."""
        assert self._engine is not None
        return self._engine

    async def upgrade(self) -> None:
        """Apply the migrations this code has (none when the database is at HEAD)."""
        await upgrade(self.engine)

    async def read(self, work: Work[T]) -> T:
        """``work`` on a connection in autocommit (it should only read)."""
        return await self._retried(self._read, work, "reading")

    async def write(self, work: Work[T]) -> T:
        """``work`` in a transaction committed when it returns, rolled back if it raises."""
        return await self._retried(self._write, work, "writing")

    folds_writes = True
    """Whether a repository should send several writes as ONE statement through
    :meth:`write_alone` (data-modifying CTEs: PostgreSQL; see core.store.pg_turns)."""

    async def write_alone(self, work: Work[T]) -> T:
        """``work`` runs exactly ONE statement, which writes: in autocommit, so the statement
        is its own transaction, committed by the server when it ends -- one round trip where
        BEGIN and COMMIT were one each (issue 12). Tried again on a fresh connection only when
        the pooled one was known to be closed before the statement went out."""
        return await self._retried(self._write_alone, work, "writing")

    def _write_alone(self, work: Work[T], ran: list[bool]) -> T:
        """In the greenlet: one checkout and ``work`` in autocommit; ``ran`` is set once the
        statement may have reached the server."""
        with self._sync.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            driver = conn.connection.driver_connection
            if not (driver is not None and driver.is_closed()):  # asyncpg's own knowledge
                ran.append(True)
            return work(conn)

    async def _retried(
        self, run: Callable[[Work[T], list[bool]], T], work: Work[T], doing: str
    ) -> T:
        """``run(work, ran)`` in a greenlet, once more on a fresh connection when the pooled
        one was dead -- unless ``ran`` says ``work`` finished. A dead pooled connection fails
        on its first statement, before anything was written; once a write's ``work`` has
        run, the COMMIT may have reached the server even though its answer did not: that is
        raised, never written twice. (A read never marks ``ran``: reading again is safe.)"""
        for attempt in (1, 2):
            ran: list[bool] = []
            try:
                return await greenlet_spawn(run, work, ran)
            except DBAPIError as exc:
                if attempt == 2 or ran or not exc.connection_invalidated:
                    raise
                log.warning("database connection was dead; %s again on a new one", doing)
                # The server may have restarted: every pooled connection is suspect. The pool
                # is replaced, as SQLAlchemy's own disconnect handling marks it all stale
                # (the fast path only invalidates the connection it found dead).
                await self.engine.dispose()
        raise AssertionError("unreachable")

    def _read(self, work: Work[T], _ran: list[bool]) -> T:
        """In the greenlet: one checkout, ``work``, checkin."""
        with self._sync.connect() as conn:
            # On the connection, not an engine of options: that one's joined event dispatch
            # costs more than setting the level (a flag of the driver's adapter) and back.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            return work(conn)

    def _write(self, work: Work[T], ran: list[bool]) -> T:
        """In the greenlet: one transaction; ``ran`` is set once ``work`` returned."""
        with self._sync.begin() as conn:
            result = work(conn)
            ran.append(True)
        return result

    async def close(self) -> None:
        await self.engine.dispose()


class SqliteDatabase(Database):
    """SQLite: a synchronous engine driven from one worker thread of this store.

    The worker keeps one connection checked out for the store's life and opens and ends each
    transaction itself -- ``BEGIN`` for a read, ``BEGIN IMMEDIATE`` for a write, sent
    straight to the driver inside a SQLAlchemy transaction of that connection -- instead of
    a pool checkout, a ``begin`` listener's statement through SQLAlchemy and a pool reset per
    transaction (issue 12).

    Calls queued while the worker is busy are taken together, in order of arrival: the reads
    at the head of the queue, each in a transaction of its own, answered with one wake-up of
    their event loop (not a thread pool future each); or the writes there, committed in
    groups: every write in the worker's next transaction, each in its own SAVEPOINT, and one
    COMMIT makes them all durable (a COMMIT costs far more than the
    statements of one turn's write). A write that raises rolls back to its savepoint and fails
    alone; the others commit. No write is answered before the COMMIT that holds it returned.
    One write alone is a plain transaction.
    """

    GROUP = 64  # writes per transaction at most: bounds how long the write lock is held
    folds_writes = False  # no data-modifying CTEs; a statement is no round trip here

    async def write_alone(self, work: Work[T]) -> T:
        return cast(T, await self._queued(work, write=True))  # a write like any other

    def __init__(self, url: URL, engine: AsyncEngine | None = None) -> None:
        # No async engine until something asks for one (migrations, health, tests): a
        # process that only reads and writes never imports sqlalchemy.ext.asyncio and
        # aiosqlite (issue 12: start-up time).
        self._engine, self.url = engine, url
        url = url.set(drivername="sqlite+pysqlite")
        # One connection, used only by the worker thread.
        self.sync = sa.create_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
        event.listen(self.sync, "connect", _autocommit_driver)
        event.listen(self.sync, "connect", sqlite_pragmas)
        # A database file's WAL checkpoints run on a thread of their own, never in a commit.
        self.checkpointer: Checkpointer | None = None
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            self.checkpointer = Checkpointer(Path(url.database))
            event.listen(self.sync, "connect", no_autocheckpoint)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="tallybot-sqlite")
        self._conn: sa.Connection | None = None  # the worker's, checked out on first use
        self._queue: deque[_Call] = deque()  # reads and writes in order of arrival
        self._scheduled = False

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_engine(self.url.render_as_string(hide_password=False))
        return self._engine

    async def upgrade(self) -> None:
        # A database at HEAD is seen on the worker's own connection; only one that needs
        # migrating makes the async engine Alembic runs on.
        if await self._on_worker(self._stamped) != HEAD:
            await upgrade(self.engine)

    def _connection(self) -> sa.Connection:
        """On the worker: its one connection (again after it was closed)."""
        if self._conn is None or self._conn.closed:
            self._conn = self.sync.connect()
        return self._conn

    def _stamped(self) -> str | None:
        conn = self._connection()
        try:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:  # no such table yet
            return None
        finally:
            conn.rollback()
        return str(rows[0][0]) if len(rows) == 1 else None

    async def _on_worker(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn)

    async def read(self, work: Work[T]) -> T:
        return cast(T, await self._queued(work, write=False))

    async def write(self, work: Work[T]) -> T:
        return cast(T, await self._queued(work, write=True))

    def _queued(self, work: Work[Any], *, write: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        job = _Call(work, loop.create_future(), loop, write)
        self._queue.append(job)  # appended on the loop, taken on the worker
        # Invariant: while _scheduled is set, a drain is queued on the worker that has not
        # yet looked at the queue, so it will see this call.
        if not self._scheduled:
            self._scheduled = True
            self.worker.submit(self._drain)
        return job.done

    def _drain(self) -> None:
        """On the worker: the calls at the head of the queue that are all reads, or all
        writes (at most a group), in arrival order; their callers are answered with one
        wake-up of their event loop. Reads each run in a transaction of their own, writes
        in one."""
        self._scheduled = False
        head = self._queue[0].write if self._queue else False
        jobs = _taken(self._queue, head, self.GROUP if head else len(self._queue))
        try:
            if jobs and head:
                self._commit(jobs)
                if self.checkpointer is not None:
                    self.checkpointer.poke()
            else:
                for read in jobs:
                    self._read_one(read)
        except BaseException as exc:  # no connection to be had, or closing it failed
            for job in jobs:
                job.error = job.error or exc
        finally:
            if self._queue and not self._scheduled:  # more than one group
                self._scheduled = True
                self.worker.submit(self._drain)
            _answer(jobs)

    def _read_one(self, read: _Call) -> None:
        """One read in a transaction of its own (one snapshot for all its statements)."""
        try:
            conn = self._connection()
        except BaseException as exc:
            read.error = exc
            return
        _alone(conn, read, "BEGIN")

    def _commit(self, group: list[_Call]) -> None:
        """Run ``group`` and commit it, leaving each write's result or error on it. Writes
        an error sent back to the queue are removed from ``group``."""
        conn = self._connection()
        if len(group) == 1:
            _alone(conn, group[0], "BEGIN IMMEDIATE")
            return
        _begin(conn, "BEGIN IMMEDIATE")  # raises when the lock was not to be had: nothing ran
        for index, write in enumerate(group):
            if not _run_saved(conn, write):
                # The error ended the whole transaction (SQLite does that for a full
                # disk, I/O errors, ...): what ran before it is gone with it, and the
                # writes not run yet go to the next transaction.
                _end(conn, commit=False)
                for earlier in group[:index]:
                    earlier.error = earlier.error or _lost(write.error)
                self._queue.extendleft(reversed(group[index + 1 :]))
                del group[index + 1 :]
                return
        try:
            _end(conn, commit=True)
        except BaseException as exc:
            for write in group:
                write.error = write.error or exc
            raise

    async def close(self) -> None:
        # The connection belongs to the worker thread: it is closed there.
        await self._on_worker(self._close)
        self.worker.shutdown(wait=True)
        if self._engine is not None:
            await self._engine.dispose()

    def _close(self) -> None:
        if self.checkpointer is not None:  # first: the worker's is the last connection,
            self.checkpointer.close()  # whose close checkpoints the log and removes it
        if self._conn is not None:
            self._conn.close()
        self.sync.dispose()


@dataclass(slots=True, eq=False)
class _Call:
    """A queued call: its work, its caller's future, and (on the worker) what came of it."""

    work: Work[Any]
    done: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    write: bool = True
    result: Any = None
    error: BaseException | None = None


def _taken(queue: deque[_Call], write: bool, most: int) -> list[_Call]:
    """Up to ``most`` calls off the head of ``queue`` while they are writes (or reads), in
    order; those whose caller gave up before they ran are dropped."""
    taken: list[_Call] = []
    while queue and len(taken) < most and queue[0].write == write:
        job = queue.popleft()
        if not job.done.cancelled():
            taken.append(job)
    return taken


def _answer(group: list[_Call]) -> None:
    """Hand each call's outcome to its caller: one callback per event loop (one here)."""
    loops: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
    for write in group:
        loops.setdefault(write.loop, []).append(write)
    for loop, writes in loops.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, writes)


def _settle(writes: list[_Call]) -> None:
    for write in writes:
        if write.done.done():  # cancelled meanwhile
            continue
        if write.error is not None:
            write.done.set_exception(write.error)
        else:
            write.done.set_result(write.result)


def _alone(conn: sa.Connection, call: _Call, begin: str) -> None:
    """One call in a transaction of its own, opened with ``begin``: committed when it is a
    write that returned, else rolled back."""
    try:
        _begin(conn, begin)
    except BaseException as exc:
        call.error = exc
        return
    try:
        call.result = call.work(conn)
    except BaseException as exc:
        call.error = exc
    try:
        _end(conn, commit=call.write and call.error is None)
    except BaseException as exc:
        call.error = call.error or exc


def _run_saved(conn: sa.Connection, write: _Call) -> bool:
    """One write of a group in its own SAVEPOINT, its result or error left on it. False when
    the error also ended the enclosing transaction.

    The savepoint is the driver's, under one fixed name (SQLAlchemy's ``begin_nested`` names
    each one anew, so SQLite prepares each anew): the statements of the work go through
    ``conn`` as always, and one nested inside it still works."""
    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        raw.execute("SAVEPOINT tallybot_write")
        write.result = write.work(conn)
    except BaseException as exc:
        write.error = exc
        if not raw.in_transaction:
            return False
        raw.execute("ROLLBACK TO tallybot_write")
        raw.execute("RELEASE tallybot_write")
        return True
    raw.execute("RELEASE tallybot_write")
    return True


def _begin(conn: sa.Connection, sql: str) -> None:
    """A transaction of SQLAlchemy's on ``conn`` (its ``begin`` events fire; its BEGIN does
    nothing on pysqlite) and ``sql``, ``BEGIN`` or ``BEGIN IMMEDIATE``, on the driver."""
    if conn.in_transaction():  # one a failed end left behind
        conn.rollback()
    conn.begin()
    try:
        driver_sql(conn, sql)
    except BaseException:
        conn.rollback()
        raise


def _end(conn: sa.Connection, *, commit: bool) -> None:
    """Commit or roll back: SQLAlchemy's transaction, and with it the driver's."""
    if commit:
        conn.commit()
    else:
        conn.rollback()


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
    # pysqlite's own implicit BEGIN is switched off; the worker emits the right one.
    dbapi_conn.isolation_level = None


def database(engine: AsyncEngine) -> Database:
    """The :class:`Database` for ``engine``'s backend."""
    if engine.dialect.name == "sqlite":
        return SqliteDatabase(engine.url, engine)
    return Database(engine)


def open_database(url: str) -> Database:
    """The :class:`Database` for ``url``; SQLite without an async engine yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        prepare_sqlite(parsed)
        return SqliteDatabase(parsed)
    return Database(create_engine(url))


class StoreBase:
    """Owns the database: open (with migrations), close, and the dialect name."""

    def __init__(self, engine: AsyncEngine | Database) -> None:
        self.db = engine if isinstance(engine, Database) else database(engine)

    @property
    def engine(self) -> AsyncEngine:
        """The async engine, for migrations, health checks and tests."""
        return self.db.engine

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Self:
        """Connect to ``url`` and, unless ``migrate`` is False, apply migrations first."""
        db = open_database(url)
        if migrate:
            try:
                await db.upgrade()
            except BaseException:
                await db.close()
                raise
        return cls(db)

    async def close(self) -> None:
        """Close the worker (SQLite) and dispose of the connection pools."""
        await self.db.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: the few queries that differ by backend branch on it."""
        return self.db.url.get_backend_name()
