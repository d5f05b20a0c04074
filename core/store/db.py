"""Database engine creation and migrations (Alembic, applied programmatically at start)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0008"
"""The newest migration (tests/store/test_migrations_head.py keeps it equal to Alembic's head):
a database already there opens without importing Alembic (issue 12: start-up time)."""


def create_engine(url: str) -> AsyncEngine:
    """Async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        prepare_sqlite(parsed)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    # Issue 10: room for TALLYBOT_MAX_CONCURRENT_RUNS runs plus the deliveries being stored.
    # Issue 12: no pre-ping (a round trip on every checkout); connections are recycled after
    # five minutes and a dead one is retried once (core.store.base.Database).
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_recycle=300)


def prepare_sqlite(url: URL) -> None:
    """The folder of a SQLite database file exists (the file itself is made on connect)."""
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL, foreign keys, and no fsync per commit: every SQLite connection of the store."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "").resolve()


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _upgrade(sync_conn: sa.Connection, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


# Any constant; every tallybot process takes the same one (issue 10).
MIGRATION_LOCK = 7_310_442_019


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database.

    On PostgreSQL a transaction-level advisory lock is taken first, so replicas starting
    at once migrate one after the other (the second finds nothing left to do) instead of
    racing on ``alembic_version``. A database already at :data:`HEAD` is left as it is
    after one query."""
    if revision == "head" and await _stamped(engine) == HEAD:
        return
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)


async def _stamped(engine: AsyncEngine) -> str | None:
    """``alembic_version`` read directly; None on a database never migrated."""
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    except DBAPIError:  # no such table yet
        return None
    return rows[0][0] if len(rows) == 1 else None


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _read(sync_conn: sa.Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_read)


def head_revision() -> str | None:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
