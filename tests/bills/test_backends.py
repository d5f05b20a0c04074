"""The ledger's write paths on SQLite and PostgreSQL (fresh schema per test)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.bills import Ledger
from core.config import Settings
from core.errors import CommandError, UnknownPrice
from core.store import Store
from core.store.tables import bill_revisions, threads


async def _revisions(store: Store, bill_id: int) -> list[tuple[int, str, str]]:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    bill_revisions.c.revision, bill_revisions.c.reason, bill_revisions.c.revenue
                )
                .where(bill_revisions.c.bill_id == bill_id)
                .order_by(bill_revisions.c.revision)
            )
        ).all()
    return [(r.revision, r.reason, str(r.revenue)) for r in rows]


async def test_save_amend_undo_void(any_store: Store, settings: Settings) -> None:
    ledger = Ledger(any_store, settings)
    thread = await any_store.get_or_create_thread("console:default")
    bill = await ledger.save(
        thread.id,
        "2024-05-01",
        [{"name": "玫瑰", "quantity": "1.125", "unit_cost": 0.1, "unit_price": "0.2"}],
    )
    assert (bill.revision, bill.cost, bill.revenue) == (1, Decimal("0.11"), Decimal("0.23"))
    async with any_store.engine.connect() as conn:
        current = (
            await conn.execute(
                sa.select(threads.c.current_bill_id).where(threads.c.id == thread.id)
            )
        ).scalar()
    assert current == bill.id

    amended = await ledger.amend(thread.id, add=[{"name": " 玫瑰 ", "quantity": "0.875"}])
    assert amended.items[0].quantity == Decimal("2") and amended.revenue == Decimal("0.40")
    undone = await ledger.undo(thread.id)
    assert undone.revenue == Decimal("0.23") and undone.revision == 3
    voided = await ledger.undo(thread.id)
    assert voided.voided and voided.revision == 4
    assert await ledger.current(thread.id) is None
    with pytest.raises(CommandError):
        await ledger.undo(thread.id)
    assert await _revisions(any_store, bill.id) == [
        (1, "save", "0.23"),
        (2, "amend", "0.40"),
        (3, "undo", "0.23"),
        (4, "undo", "0.00"),
    ]


async def test_catalog_fill_and_unknown_price(any_store: Store, settings: Settings) -> None:
    ledger = Ledger(any_store, settings)
    thread = await any_store.get_or_create_thread("console:default")
    assert (
        await ledger.learn_prices(
            thread.id, [{"name": "向日葵", "unit_cost": "5", "unit_price": "12"}], source="a.csv"
        )
        == 1
    )
    await ledger.learn_prices(thread.id, [{"name": "向日葵", "unit_price": "13"}], source="b.csv")
    assert await ledger.catalog(thread.id) == {"向日葵": (Decimal("5"), Decimal("13"))}
    bill = await ledger.save(thread.id, "2024-05-01", [{"name": "向日葵", "quantity": 2}])
    assert bill.revenue == Decimal("26.00")
    with pytest.raises(UnknownPrice):
        await ledger.amend(thread.id, add=[{"name": "郁金香", "quantity": 1}])
    assert (await ledger.get(bill.id)).revision == 1


async def test_idempotent_by_run_and_call(any_store: Store, settings: Settings) -> None:
    ledger = Ledger(any_store, settings)
    thread = await any_store.get_or_create_thread("console:default")
    items = [{"name": "向日葵", "quantity": 2, "unit_cost": 5, "unit_price": 12}]
    first = await ledger.save(thread.id, "2024-05-01", items, run_id="run_a", call_id="call_1")
    assert (
        await ledger.save(thread.id, "2024-05-01", items, run_id="run_a", call_id="call_1") == first
    )
    add = [{"name": "向日葵", "quantity": 1}]
    a1 = await ledger.amend(thread.id, add=add, run_id="run_a", call_id="call_2")
    a2 = await ledger.amend(thread.id, add=add, run_id="run_a", call_id="call_2")
    assert a1 == a2
    assert len(await ledger.list()) == 1
    assert len(await _revisions(any_store, first.id)) == 2


async def test_concurrent_amends_all_land(any_store: Store, settings: Settings) -> None:
    """Writers racing for the next revision number are serialised or retried, never lost."""
    ledger = Ledger(any_store, settings)
    thread = await any_store.get_or_create_thread("console:default")
    bill = await ledger.save(
        thread.id, "2024-05-01", [{"name": "a", "quantity": 1, "unit_cost": 1, "unit_price": 2}]
    )
    await asyncio.gather(
        *(
            ledger.amend(
                thread.id, bill.id, add=[{"name": "a", "quantity": 1}], run_id="r", call_id=f"c{i}"
            )
            for i in range(4)
        )
    )
    final = await ledger.get(bill.id)
    assert final.revision == 5
    assert final.items[0].quantity == Decimal("5")
    assert [r[0] for r in await _revisions(any_store, bill.id)] == [1, 2, 3, 4, 5]
