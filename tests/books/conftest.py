"""Fixtures for issue 9 (books): an unmigrated store on each backend, and a migrated one."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.bills import Ledger
from core.config import Settings
from core.store import Store
from tests.pg import PG_URL, SCHEMA_PREFIX, open_pg_schema, pg_store


@pytest.fixture(params=["sqlite", "postgresql"])
async def bare_store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """A store with no migrations applied yet, on each backend."""
    if request.param == "sqlite":
        st = await Store.open(settings.db_url, migrate=False)
        try:
            yield st
        finally:
            await st.close()
        return
    admin = create_async_engine(PG_URL, poolclass=NullPool)
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
    store: Store | None = None
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        store = await open_pg_schema(schema, migrate=False)
        yield store
    finally:
        if store is not None:
            await store.close()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def any_ledger(any_store: Store, settings: Settings) -> Ledger:
    return Ledger(any_store, settings)


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_bot(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Any]:
    """A model-free :class:`Tallybot` on each backend (PostgreSQL: a schema of its own)."""
    from core.app import Tallybot

    if request.param == "sqlite":
        async with await Tallybot.open(settings) as bot:
            yield bot
        return
    from core.assistant import load_assistant
    from core.engine import Engine
    from core.files import FileIntake
    from core.tools.base import ToolRegistry

    async for store in pg_store():
        engine = Engine(settings, store, None, ToolRegistry(), load_assistant())
        bot = Tallybot(
            settings, store, engine, Ledger(store, settings), FileIntake(settings, store)
        )
        try:
            yield bot
        finally:
            await bot.close()
