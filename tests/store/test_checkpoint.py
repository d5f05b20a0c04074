"""core.store.checkpoint: a SQLite store's WAL checkpoints run on their own thread, never in
the worker's commits (issue 12: the commit that checkpointed was a turn's p99)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.store import Store
from core.store.base import SqliteDatabase


def _db(store: Store) -> SqliteDatabase:
    assert isinstance(store.db, SqliteDatabase) and store.db.checkpointer is not None
    return store.db


async def test_the_workers_commits_never_checkpoint_the_checkpointer_does(
    store: Store,
) -> None:
    db = _db(store)
    level = await db.read(lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
    assert level == 0  # the worker's own commits leave the log as it is
    db.checkpointer.interval = 0  # type: ignore[union-attr]
    before = db.checkpointer.done  # type: ignore[union-attr]
    wal = Path(str(db.url.database) + "-wal")
    sizes = []
    for i in range(40):
        await store.get_or_create_thread(f"console:ckpt{i}")
        await db._on_worker(db.checkpointer.idle)  # type: ignore[union-attr]
        sizes.append(wal.stat().st_size)
    assert db.checkpointer.done > before  # type: ignore[union-attr]
    # Each checkpoint copied the log back, so the next write started it over: the log stays
    # as small as a few writes (never checkpointed, it would grow with every one).
    assert sizes[-1] <= sizes[4], sizes


async def test_a_checkpoint_that_fails_is_logged_and_writes_go_on(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = _db(store)
    assert db.checkpointer is not None
    db.checkpointer.interval = 0
    db.checkpointer.path = tmp_path  # a folder: no database can be opened there
    with caplog.at_level(logging.WARNING, logger="core.store.checkpoint"):
        thread = await store.get_or_create_thread("console:ckpt-fails")
        await db._on_worker(db.checkpointer.idle)
    assert "WAL checkpoint" in caplog.text
    await store.update_thread(thread.id, title="still written")
    assert (await store.get_thread(thread.id)).title == "still written"
