"""Leases on both backends: one holder at a time, renewed while alive, taken once lapsed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from core.domain import utcnow
from core.replica import Replica
from core.store import Store
from core.store.tables import leases


async def _lapse(store: Store, name: str) -> None:
    """What a dead holder's lease looks like once its ttl passed."""
    async with store.engine.begin() as conn:
        await conn.execute(
            leases.update()
            .where(leases.c.name == name)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_one_holder_until_it_lapses(any_store: Store) -> None:
    assert await any_store.take_lease("thread:t1", "a:1", "a", 30)
    assert not await any_store.take_lease("thread:t1", "b:1", "b", 30)
    assert await any_store.take_lease("thread:t1", "a:1", "a", 30)  # its own: renewed
    assert await any_store.lease_holder("thread:t1") == ("a:1", "a")
    await _lapse(any_store, "thread:t1")
    assert await any_store.lease_holder("thread:t1") is None
    assert await any_store.take_lease("thread:t1", "b:1", "b", 30)
    await any_store.release_lease("thread:t1", "a:1")  # not a's any more: no effect
    assert await any_store.lease_holder("thread:t1") == ("b:1", "b")
    await any_store.release_lease("thread:t1", "b:1")
    assert await any_store.lease_holder("thread:t1") is None


async def test_racing_takers_never_both_win(any_store: Store) -> None:
    results = await asyncio.gather(
        *(any_store.take_lease("poller", f"r{i}:x", f"r{i}", 30) for i in range(8))
    )
    assert sum(results) == 1
    await _lapse(any_store, "poller")
    results = await asyncio.gather(
        *(any_store.take_lease("poller", f"s{i}:x", f"s{i}", 30) for i in range(8))
    )
    assert sum(results) == 1


async def test_a_replica_renews_and_releases(any_store: Store) -> None:
    replica = Replica(any_store, ttl=30)
    owner = await replica.try_hold("thread:t2")
    assert owner is not None
    assert await any_store.renew_leases(replica.id, 30) == 1
    other = Replica(any_store, ttl=30)
    waiter = asyncio.create_task(other.hold("thread:t2"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await replica.release("thread:t2", owner)
    assert (await waiter).startswith(other.id)
    await other.stop()  # releases everything it holds
    async with any_store.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(leases))).scalar() == 0


async def test_concurrent_migrations_on_an_empty_postgres_database() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from core.store import db

    from .harness import pg_database

    async with pg_database() as url:
        engines = [create_async_engine(url, poolclass=NullPool) for _ in range(3)]
        try:
            await asyncio.gather(*(db.upgrade(e) for e in engines))
            assert await db.current_revision(engines[0]) == db.head_revision()
        finally:
            for e in engines:
                await e.dispose()
