"""Migration 0003 moves bills and prices of a database made at 0002 into their place's book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from core.bills import Ledger
from core.config import Settings
from core.store import Store, db

# The 0002 schema as the release before books wrote it (no book columns).
_threads = sa.table(
    "threads",
    sa.column("id"),
    sa.column("key"),
    sa.column("metadata", sa.JSON),
    sa.column("current_bill_id"),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_bills = sa.table(
    "bills",
    *(sa.column(c) for c in ("id", "thread_id", "date", "currency", "revision", "voided")),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_revisions = sa.table(
    "bill_revisions",
    *(sa.column(c) for c in ("bill_id", "revision", "cost", "revenue", "profit", "voided")),
    sa.column("items", sa.JSON),
    sa.column("reason"),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_prices = sa.table(
    "price_catalog",
    *(sa.column(c) for c in ("thread_id", "name", "unit_cost", "unit_price", "source")),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)
THREADS = {
    "t1": "slack:T1:C1:1700.1",
    "t2": "slack:T1:C1:1700.2",
    "t3": "slack:T1:C1:1700.3#archived:abc",
    "t4": "telegram:42:7",
    "t5": "console:default",
    "t6": "console:other",
}


async def _write_as_0002(store: Store) -> None:
    """Rows exactly as the 0002 release's Ledger left them."""
    async with store.engine.begin() as conn:
        for n, (tid, key) in enumerate(THREADS.items()):
            at = T0 + timedelta(minutes=n)
            await conn.execute(
                _threads.insert().values(
                    id=tid, key=key, metadata={}, current_bill_id=None, created_at=at, updated_at=at
                )
            )
        # Two bills of one date in two threads of one channel, one more in a third thread.
        for bill_id, tid, day in ((1, "t1", "2026-11-30"), (2, "t2", "2026-11-30"),
                                  (3, "t3", "2026-11-29"), (4, "t4", "2026-11-30"),
                                  (5, "t6", "2026-11-30")):  # fmt: skip
            await conn.execute(
                _bills.insert().values(
                    id=bill_id,
                    thread_id=tid,
                    date=day,
                    currency="CNY",
                    revision=1,
                    voided=False,
                    created_at=T0,
                    updated_at=T0,
                )  # fmt: skip
            )
            await conn.execute(
                _revisions.insert().values(
                    bill_id=bill_id,
                    revision=1,
                    reason="save",
                    voided=False,
                    created_at=T0,
                    items=[{"name": "玫瑰", "quantity": "2", "unit_cost": "3", "unit_price": "8"}],
                    cost="6.00",
                    revenue="16.00",
                    profit="10.00",
                )  # fmt: skip
            )
        for tid, cost, price, minutes in (("t1", "3", "8", 1), ("t2", None, "9", 2),
                                          ("t4", "4", "10", 3)):  # fmt: skip
            await conn.execute(
                _prices.insert().values(
                    thread_id=tid,
                    name="玫瑰",
                    unit_cost=cost,
                    unit_price=price,
                    source="sales.csv",
                    updated_at=T0 + timedelta(minutes=minutes),
                )  # fmt: skip
            )
        await conn.execute(_threads.update().where(_threads.c.id == "t1").values(current_bill_id=1))


async def test_upgrade_moves_bills_and_prices_into_books(
    bare_store: Store, settings: Settings
) -> None:
    await db.upgrade(bare_store.engine, "0002")
    await _write_as_0002(bare_store)
    await db.upgrade(bare_store.engine)
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert await db.current_revision(bare_store.engine) == head  # 0003 or what follows it
    ledger = Ledger(bare_store, settings)

    every = await ledger.list()
    assert [b.id for b in every] == [3, 1, 2, 4, 5]  # none lost, none merged
    assert {b.id: b.book for b in every} == {
        1: "slack:T1:C1", 2: "slack:T1:C1", 3: "slack:T1:C1",
        4: "telegram:42", 5: "console:default",
    }  # fmt: skip
    channel = await ledger.list(book="slack:T1:C1")
    assert [(b.id, b.date) for b in channel] == [
        (3, "2026-11-29"),
        (1, "2026-11-30"),
        (2, "2026-11-30"),
    ]
    # Threads know their book; the thread's current bill is kept.
    t2 = await bare_store.get_thread("t2")
    assert t2.book == "slack:T1:C1"
    current = await ledger.current("t1")
    assert current is not None and current.id == 1
    # The archived thread's bill is now visible from a sibling thread of the channel.
    assert (await ledger.get(3, thread_id="t2")).id == 3
    # Prices of one place merged, the newest value of each field winning.
    assert await ledger.catalog("t2") == {"玫瑰": (Decimal("3"), Decimal("9"))}
    assert await ledger.catalog("t4") == {"玫瑰": (Decimal("4"), Decimal("10"))}
    assert await ledger.catalog("t5") == {}


async def test_saving_a_day_with_two_migrated_bills_revises_the_newest(
    bare_store: Store, settings: Settings
) -> None:
    await db.upgrade(bare_store.engine, "0002")
    await _write_as_0002(bare_store)
    await db.upgrade(bare_store.engine)
    ledger = Ledger(bare_store, settings)
    bill = await ledger.save("t1", "2026-11-30", [{"name": "玫瑰", "quantity": 5}])
    assert (bill.id, bill.revision) == (2, 2)
    assert len(await ledger.list(book="slack:T1:C1")) == 3
