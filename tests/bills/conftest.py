"""Fixtures for the ledger tests: a ledger on SQLite, and one per backend for the write paths.

PostgreSQL gets a fresh schema per test (see :mod:`tests.pg`), so tests never see each
other's rows.
"""

from __future__ import annotations

import pytest

from core.bills import Ledger
from core.config import Settings
from core.domain import Thread
from core.store import Store


@pytest.fixture
def ledger(store: Store, settings: Settings) -> Ledger:
    return Ledger(store, settings)


@pytest.fixture
async def thread(store: Store) -> Thread:
    return await store.get_or_create_thread("console:default")
