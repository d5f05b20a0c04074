"""Fixtures for the ledger tests: a ledger on SQLite, and one per backend for the write paths.

PostgreSQL gets a fresh schema per test (``search_path`` set on every connection), migrated
with :func:`core.store.db.upgrade` and dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.bills import Ledger
from core.config import Settings
from core.domain import Thread
from core.store import Store, db

# Read at import, before the autouse fixture scrubs TALLYBOT_* variables from the environment.
PG_URL = os.environ.get(
    "TALLYBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def _pg_store() -> AsyncIterator[Store]:
    schema = f"t_bills_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:  # connection refused: no server on this machine
        await admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    engine = create_async_engine(
        PG_URL,
        poolclass=NullPool,
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        await db.upgrade(engine)
        yield Store(engine)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """A migrated store on each backend."""
    if request.param == "sqlite":
        st = await Store.open(settings.db_url)
        try:
            yield st
        finally:
            await st.close()
        return
    async for st in _pg_store():
        yield st


@pytest.fixture
def ledger(store: Store, settings: Settings) -> Ledger:
    return Ledger(store, settings)


@pytest.fixture
async def thread(store: Store) -> Thread:
    return await store.get_or_create_thread("console:default")
