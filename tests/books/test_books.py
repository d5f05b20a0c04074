"""Books (issue 9) on SQLite and PostgreSQL: keys, sharing, isolation, one bill per day, undo."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.bills import Ledger
from core.bills.books import actor_for, book_for, console_book, place_book
from core.bills.model import Actor
from core.config import Settings
from core.store import Store
from core.tools.base import ToolContext, ToolRegistry
from core.tools.bill_report import BillReportTool
from core.tools.bills import bill_tools


def rose(qty: Any = 2, cost: Any = 3, price: Any = 8) -> dict[str, Any]:
    return {"name": "玫瑰", "quantity": qty, "unit_cost": cost, "unit_price": price}


@pytest.mark.parametrize(
    ("key", "book"),
    [
        ("slack:T1:C1:1700.1", "slack:T1:C1"),
        ("slack:T1:C1:channel", "slack:T1:C1"),
        ("slack:T1:D0ALICE:dm", "slack:T1:D0ALICE"),
        ("slack:T1:C1:1700.1#archived:abc", "slack:T1:C1"),
        ("telegram:-1001:7", "telegram:-1001"),
        ("telegram:42:0", "telegram:42"),
        ("console:default", "console:default"),
        ("console:evening", "console:default"),
    ],
)
def test_book_keys(key: str, book: str) -> None:
    assert place_book(key) == book
    assert book_for(key, "thread_x", "thread") == "thread:thread_x"
    assert book_for(key, "thread_x", "place", "console:shop2") == "console:shop2"


def test_console_book_and_actor() -> None:
    assert console_book("shop2") == "console:shop2"
    assert console_book("console:shop2") == "console:shop2"
    assert actor_for("slack:T1:C1:1.2", "U123", "Mei") == Actor("slack:U123", "Mei")
    assert actor_for("telegram:42:0", "42") == Actor("telegram:42", None)
    assert actor_for("console:default", "ann") == Actor("console:ann", None)
    assert actor_for("console:default", None) is None


async def test_threads_of_a_channel_share_bills_and_prices(
    any_ledger: Ledger, any_store: Store
) -> None:
    a = await any_store.get_or_create_thread("slack:T1:C1:1700.1")
    b = await any_store.get_or_create_thread("slack:T1:C1:1700.2")
    other = await any_store.get_or_create_thread("slack:T1:C2:1700.3")
    assert a.book == b.book == "slack:T1:C1" and other.book == "slack:T1:C2"
    bill = await any_ledger.save(a.id, "2026-11-30", [rose()])
    # Thread b sees the bill and its prices, but has its own (empty) current bill.
    assert (await any_ledger.get(bill.id, thread_id=b.id)).id == bill.id
    assert await any_ledger.current(b.id) is None
    assert await any_ledger.catalog(b.id) == {"玫瑰": (Decimal("3"), Decimal("8"))}
    again = await any_ledger.save(b.id, "2026-12-01", [{"name": "玫瑰", "quantity": 5}])
    assert again.revenue == Decimal("40.00")  # price from the book's catalog
    assert [x.id for x in await any_ledger.list(book="slack:T1:C1")] == [bill.id, again.id]
    # Another channel sees none of it, whatever id it asks for.
    assert await any_ledger.catalog(other.id) == {}
    assert await any_ledger.list(book="slack:T1:C2") == []
    with pytest.raises(Exception) as err:
        await any_ledger.get(bill.id, thread_id=other.id)
    assert getattr(err.value, "code", None) == "not_found"


async def test_after_new_the_next_thread_still_sees_the_book(
    any_ledger: Ledger, any_store: Store
) -> None:
    first = await any_store.get_or_create_thread("telegram:42:0")
    bill = await any_ledger.save(first.id, "2026-11-30", [rose()])
    await any_store.archive_thread_key("telegram:42:0")
    second = await any_store.get_or_create_thread("telegram:42:0")
    assert second.id != first.id and second.book == "telegram:42"
    assert (await any_ledger.get(bill.id, thread_id=second.id)).id == bill.id


async def test_thread_scope_keeps_each_thread_apart(any_ledger: Ledger, any_store: Store) -> None:
    a = await any_store.get_or_create_thread(
        "slack:T1:C1:1", book=lambda i: book_for("", i, "thread")
    )
    b = await any_store.get_or_create_thread(
        "slack:T1:C1:2", book=lambda i: book_for("", i, "thread")
    )
    assert a.book == f"thread:{a.id}"
    bill = await any_ledger.save(a.id, "2026-11-30", [rose()])
    with pytest.raises(Exception, match="no bill"):
        await any_ledger.get(bill.id, thread_id=b.id)
    other = await any_ledger.save(b.id, "2026-11-30", [rose(1)])
    assert other.id != bill.id  # same date, another book: another bill


async def test_one_bill_per_book_date_and_currency(any_ledger: Ledger, any_store: Store) -> None:
    a = await any_store.get_or_create_thread("slack:T1:C1:1")
    b = await any_store.get_or_create_thread("slack:T1:C1:2")
    first = await any_ledger.save(a.id, "2026-11-30", [rose(2)])
    second = await any_ledger.save(b.id, "2026-11-30", [rose(5)], actor=Actor("slack:U2", "Bo"))
    assert (second.id, second.revision) == (first.id, 2)
    assert [i.quantity for i in second.items] == [Decimal("5")]  # replaced, not merged
    usd = await any_ledger.save(b.id, "2026-11-30", [rose(1)], currency="USD")
    assert usd.id != first.id
    assert len(await any_ledger.list(book="slack:T1:C1")) == 2
    # /undo in the thread that replaced it brings the earlier items back.
    undone = await any_ledger.undo(b.id, first.id)
    assert [i.quantity for i in undone.items] == [Decimal("2")]
    revisions = await any_ledger.revisions(first.id)
    assert [(r.reason, r.actor) for r in revisions] == [
        ("save", None),
        ("save", Actor("slack:U2", "Bo")),
        ("undo", None),
    ]


async def test_a_voided_day_gets_a_new_bill(any_ledger: Ledger, any_store: Store) -> None:
    t = await any_store.get_or_create_thread("console:default")
    first = await any_ledger.save(t.id, "2026-11-30", [rose()])
    await any_ledger.undo(t.id)  # voids it
    again = await any_ledger.save(t.id, "2026-11-30", [rose(1)])
    assert again.id != first.id and again.revision == 1


async def _tool(registry: ToolRegistry, ctx: ToolContext, name: str, args: dict[str, Any]) -> Any:
    import json

    return await registry.call(name, json.dumps(args), ctx)


async def test_tools_see_only_their_book(
    any_ledger: Ledger, any_store: Store, settings: Settings
) -> None:
    registry = ToolRegistry()
    for tool in [*bill_tools(any_ledger), BillReportTool(any_ledger)]:
        registry.register(tool)
    mine = await any_store.get_or_create_thread("slack:T1:C1:1")
    theirs = await any_store.get_or_create_thread("slack:T9:C9:1")
    their_bill = await any_ledger.save(theirs.id, "2026-11-30", [rose()])
    ctx = ToolContext(settings, any_store, mine, "run_1", "call_1")
    got = await _tool(registry, ctx, "get_bill", {"bill_id": their_bill.id})
    assert got.is_error and got.output["error"]["code"] == "not_found"
    listed = await _tool(registry, ctx, "list_bills", {})
    assert listed.output["bills"] == []
    saved = await _tool(registry, ctx, "save_bill", {"date": "2026-11-30", "items": [rose()]})
    assert saved.output["replaced"] is False and saved.output["bill_id"] != their_bill.id
    ctx2 = ToolContext(settings, any_store, mine, "run_1", "call_2")
    again = await _tool(registry, ctx2, "save_bill", {"date": "2026-11-30", "items": [rose(4)]})
    out = again.output
    assert out["replaced"] is True and out["bill_id"] == saved.output["bill_id"]
    assert out["before"] == {"revision": 1, "cost": "6.00", "revenue": "16.00", "profit": "10.00"}
    assert (out["cost"], out["revenue"], out["profit"]) == ("12.00", "32.00", "20.00")
    report = await _tool(registry, ctx, "bill_report", {"date_from": "2026-11-01", "by": "week"})
    assert report.output["book"] == "slack:T1:C1"
    assert report.output["rows"] == [
        {"key": "2026-W49", "cost": "12.00", "revenue": "32.00", "profit": "20.00", "bills": 1}
    ]
