"""A throwaway PostgreSQL schema per test, for suites that run on both store backends.

The server at 127.0.0.1:5432 (trust auth, database ``test``) is part of every machine of this
project, CI's included, so an unreachable server fails the test rather than skipping it: a skip
would hide a broken backend. Each test gets its own schema, migrated through a ``search_path``
connection setting and dropped afterwards; schemas left by a killed test process (its pid is
in the name) are dropped by the next run.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from core.store import Store, db

# Read at import, before the autouse fixture scrubs TALLYBOT_* variables from the environment.
PG_URL = os.environ.get(
    "TALLYBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
SCHEMA_PREFIX = "tallybot_test_"
_SCHEMA_RE = re.compile(rf"^{SCHEMA_PREFIX}(\d+)_[0-9a-f]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def _drop_stale_schemas(admin: AsyncEngine) -> None:
    async with admin.begin() as conn:
        names = (
            await conn.execute(
                sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": SCHEMA_PREFIX + "%"},
            )
        ).scalars()
        for name in list(names):
            m = _SCHEMA_RE.match(name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


async def open_pg_schema(schema: str, *, migrate: bool = True) -> Store:
    """A Store whose connections all use ``schema`` (created beforehand) as search_path."""
    engine = create_async_engine(
        PG_URL,
        poolclass=NullPool,  # no connection outlives the test's event loop
        connect_args={"server_settings": {"search_path": schema}},
    )
    if migrate:
        await db.upgrade(engine)
    return Store(engine)


async def pg_store() -> AsyncIterator[Store]:
    """Yield a migrated Store in a fresh schema; drop the schema afterwards."""
    admin = create_async_engine(PG_URL, poolclass=NullPool)
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
    store: Store | None = None
    try:
        await _drop_stale_schemas(admin)
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        store = await open_pg_schema(schema)
        yield store
    finally:
        if store is not None:
            await store.close()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def terminate(*pids: int) -> None:
    """End these server processes: their connections die as in a server restart."""
    admin = create_async_engine(PG_URL, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            for pid in pids:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        await admin.dispose()
