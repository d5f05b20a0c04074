"""Ledger behaviour on SQLite: money, names, validation, revisions, undo, catalog, reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from core.bills import Bill, Ledger, LineItem, format_money, format_quantity, normalize_name
from core.config import Settings
from core.domain import Thread
from core.errors import CommandError, NotFound, ToolError, UnknownPrice
from core.store import Store
from core.store.tables import bill_revisions, bills


def item(name: str, quantity: Any, cost: Any = None, price: Any = None, **extra: Any) -> dict:
    data: dict[str, Any] = {"name": name, "quantity": quantity, **extra}
    if cost is not None:
        data["unit_cost"] = cost
    if price is not None:
        data["unit_price"] = price
    return data


async def revision_rows(store: Store, bill_id: int) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(bill_revisions)
                .where(bill_revisions.c.bill_id == bill_id)
                .order_by(bill_revisions.c.revision)
            )
        ).all()
    return [dict(r._mapping) for r in rows]


# --- money -------------------------------------------------------------------------------


async def test_decimal_sums_are_exact(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(
        thread.id,
        "2024-05-01",
        [item("a", 1, 0.1, 0.2), item("b", 1, 0.2, "0.1"), item("c", 3, "0.1", "0.3")],
    )
    assert bill.cost == Decimal("0.60")  # 0.1 + 0.2 + 0.3, not 0.6000000000000001
    assert bill.revenue == Decimal("1.20")
    assert bill.profit == Decimal("0.60")
    assert all(isinstance(v, Decimal) for v in (bill.cost, bill.revenue, bill.profit))
    assert bill.to_json()["cost"] == "0.60"


async def test_three_decimal_quantities_round_line_amounts_half_up(
    ledger: Ledger, thread: Thread
) -> None:
    bill = await ledger.save(
        thread.id,
        "2024-05-01",
        [item("玫瑰", "1.125", "3", "5"), item("百合", "0.333", "3", "0.5")],
    )
    rose, lily = bill.items
    assert rose.quantity == Decimal("1.125")
    assert rose.cost == Decimal("3.38")  # 3.375 -> half-up
    assert rose.revenue == Decimal("5.63")  # 5.625 -> half-up
    assert lily.cost == Decimal("1.00")  # 0.999
    assert lily.revenue == Decimal("0.17")  # 0.1665
    # Bill totals are sums of the printed line amounts, so a table always adds up.
    assert bill.cost == rose.cost + lily.cost == Decimal("4.38")
    assert bill.revenue == Decimal("5.80")
    assert bill.to_json()["items"][0]["quantity"] == "1.125"


async def test_totals_sent_by_the_model_are_ignored(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(
        thread.id,
        "2024-05-01",
        [
            {
                "name": "向日葵",
                "quantity": 2,
                "unit_cost": 5,
                "unit_price": 12,
                "total": "9999",
                "cost": "1",
                "revenue": "1",
            }
        ],
    )
    assert (bill.cost, bill.revenue, bill.profit) == (
        Decimal("10.00"),
        Decimal("24.00"),
        Decimal("14.00"),
    )
    rows = await revision_rows(ledger._store, bill.id)
    assert rows[0]["cost"] == Decimal("10.00")
    assert set(rows[0]["items"][0]) == {"name", "quantity", "unit_cost", "unit_price"}


async def test_negative_profit_and_zero_price_are_allowed(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("赠品", 1, "4.5", 0)])
    assert bill.profit == Decimal("-4.50")
    assert bill.to_json()["profit"] == "-4.50"


def test_number_formats() -> None:
    assert format_money(Decimal("12.5")) == "12.50"
    assert format_money(Decimal("1E+2")) == "100.00"
    assert format_money(Decimal("0.125")) == "0.125"  # unit prices are never rounded
    assert format_money(Decimal("-0")) == "0.00"
    assert format_quantity(Decimal("2.000")) == "2"
    assert format_quantity(Decimal("1E+2")) == "100"
    assert format_quantity(Decimal("1.50")) == "1.5"
    line = LineItem("x", Decimal("3"), Decimal("0.125"), Decimal("0.2"))
    assert line.to_json() == {
        "name": "x",
        "quantity": "3",
        "unit_cost": "0.125",
        "unit_price": "0.20",
        "cost": "0.38",
        "revenue": "0.60",
    }


# --- names -------------------------------------------------------------------------------


def test_normalize_name() -> None:
    assert normalize_name(" 向日葵 ") == "向日葵"
    assert normalize_name("向日葵\u3000") == "向日葵"  # ideographic space
    assert normalize_name("Ｒｏｓｅ　１２") == "rose 12"  # full-width letters, digits, space
    assert normalize_name("Red   Rose") == normalize_name("red rose")
    assert normalize_name("\ufeff向日葵") == "向日葵"  # BOM from a CSV header row


async def test_same_normalised_name_merges(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(
        thread.id,
        "2024-05-01",
        [
            item("向日葵", 2, 5, 12),
            item(" 向日葵 ", "1", None, 12),
            item("Rose", 1, 3, 8),
            item("ＲＯＳＥ", 2),
        ],
    )
    assert [(i.name, i.quantity) for i in bill.items] == [
        ("向日葵", Decimal("3")),
        ("Rose", Decimal("3")),
    ]
    assert bill.items[1].unit_price == Decimal("8")


async def test_conflicting_prices_in_one_save(ledger: Ledger, thread: Thread) -> None:
    with pytest.raises(ToolError, match="different unit prices") as err:
        await ledger.save(
            thread.id, "2024-05-01", [item("向日葵", 2, 5, 12), item("向日葵", 1, 5, 13)]
        )
    assert err.value.code == "conflicting_prices"
    assert err.value.zh


@pytest.mark.parametrize("name", ["", "   ", None, 5, "a\x07b", "x" * 201])
async def test_bad_names(ledger: Ledger, thread: Thread, name: Any) -> None:
    with pytest.raises(ToolError):
        await ledger.save(
            thread.id,
            "2024-05-01",
            [{"name": name, "quantity": 1, "unit_cost": 1, "unit_price": 2}],
        )


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quantity",
    [
        0,
        -1,
        "0",
        "-1",
        "abc",
        "",
        None,
        "NaN",
        float("nan"),
        float("inf"),
        "Infinity",
        True,
        [1],
        "1e10",
        "0.0000001",
    ],
)
async def test_bad_quantities(ledger: Ledger, thread: Thread, quantity: Any) -> None:
    with pytest.raises(ToolError) as err:
        await ledger.save(thread.id, "2024-05-01", [item("向日葵", quantity, 5, 12)])
    assert err.value.code == "invalid_quantity"
    assert "quantity of 向日葵" in err.value.message
    assert "向日葵" in (err.value.zh or "")
    assert await ledger.list() == []


@pytest.mark.parametrize("price", [-1, "abc", "NaN", float("inf"), True])
async def test_bad_prices(ledger: Ledger, thread: Thread, price: Any) -> None:
    with pytest.raises(ToolError, match="unit_price of 向日葵"):
        await ledger.save(thread.id, "2024-05-01", [item("向日葵", 1, 5, price)])


async def test_full_width_number_strings(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("向日葵", "２", "５", "１２.５")])
    assert bill.items[0].quantity == Decimal("2")
    assert bill.revenue == Decimal("25.00")


@pytest.mark.parametrize(
    "day", ["2024-02-30", "2024/05/01", "20240501", "yesterday", "", None, "2024-5-1"]
)
async def test_bad_dates(ledger: Ledger, thread: Thread, day: Any) -> None:
    with pytest.raises(ToolError, match="YYYY-MM-DD") as err:
        await ledger.save(thread.id, day, [item("a", 1, 1, 2)])
    assert err.value.code == "invalid_date"


async def test_currency_default_and_validation(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)])
    assert bill.currency == "CNY"
    bill = await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)], currency="usd")
    assert bill.currency == "USD"
    with pytest.raises(ToolError, match="3-letter"):
        await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)], currency="元")


async def test_save_needs_items(ledger: Ledger, thread: Thread) -> None:
    with pytest.raises(ToolError, match="at least one item"):
        await ledger.save(thread.id, "2024-05-01", [])
    with pytest.raises(ToolError, match="list"):
        await ledger.save(thread.id, "2024-05-01", "2 向日葵")  # type: ignore[arg-type]


async def test_unknown_thread(ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        await ledger.save("thread_nope", "2024-05-01", [item("a", 1, 1, 2)])


# --- catalog -----------------------------------------------------------------------------


async def test_unknown_price_asks_the_user(ledger: Ledger, thread: Thread) -> None:
    with pytest.raises(UnknownPrice) as err:
        await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2), item("玫瑰", 1, 3, 8)])
    assert err.value.message == "no known price for 向日葵; ask the user"
    assert err.value.code == "unknown_price"
    assert "向日葵" in err.value.localized("zh") and "询问" in err.value.localized("zh")
    assert await ledger.list() == []  # nothing written, not even the priced line


async def test_half_known_price_is_still_unknown(ledger: Ledger, thread: Thread) -> None:
    await ledger.learn_prices(thread.id, [{"name": "向日葵", "unit_price": "12"}], source="x")
    with pytest.raises(UnknownPrice):
        await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2)])
    bill = await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2, cost="5")])
    assert (bill.items[0].unit_cost, bill.items[0].unit_price) == (Decimal("5"), Decimal("12"))


async def test_learn_prices_from_a_sales_file(ledger: Ledger, thread: Thread) -> None:
    rows = [
        {"name": "向日葵", "quantity": 3, "unit_cost": 5.0, "unit_price": "12.50"},
        {"name": "玫瑰", "unit_cost": float("nan"), "unit_price": "8"},  # blank cell in pandas
        {"name": "", "unit_cost": 1, "unit_price": 2},
        {"name": "百合", "unit_cost": None, "unit_price": "n/a"},
        "not a row",
    ]
    assert await ledger.learn_prices(thread.id, rows, source="sales.csv") == 2  # type: ignore[arg-type]
    catalog = await ledger.catalog(thread.id)
    assert catalog == {
        "向日葵": (Decimal("5"), Decimal("12.5")),
        "玫瑰": (None, Decimal("8")),
    }
    # A later file with only a cost keeps the known price.
    await ledger.learn_prices(thread.id, [{"name": " 玫瑰 ", "unit_cost": "3"}], source="b.csv")
    assert (await ledger.catalog(thread.id))["玫瑰"] == (Decimal("3"), Decimal("8"))


async def test_saved_bills_teach_the_catalog_per_thread(
    ledger: Ledger, store: Store, thread: Thread
) -> None:
    await ledger.save(thread.id, "2024-05-01", [item("Sunflower", 2, "5", "12")])
    assert (await ledger.catalog(thread.id))["sunflower"] == (Decimal("5"), Decimal("12"))
    other = await store.get_or_create_thread("slack:T1:C1:1")
    assert await ledger.catalog(other.id) == {}
    with pytest.raises(UnknownPrice):
        await ledger.save(other.id, "2024-05-01", [item("sunflower", 1)])


async def test_amend_add_without_price_uses_catalog(ledger: Ledger, thread: Thread) -> None:
    """`/add 2 向日葵` after a sales file taught the price: no price needed, none invented."""
    await ledger.learn_prices(
        thread.id, [{"name": "向日葵", "unit_cost": "5", "unit_price": "12"}], source="sales.csv"
    )
    await ledger.save(thread.id, "2024-05-01", [item("玫瑰", 10, "3", "8")])
    bill = await ledger.amend(thread.id, add=[{"name": "向日葵", "quantity": 2}])
    assert [(i.name, i.quantity, i.unit_cost, i.unit_price) for i in bill.items] == [
        ("玫瑰", Decimal("10"), Decimal("3"), Decimal("8")),
        ("向日葵", Decimal("2"), Decimal("5"), Decimal("12")),
    ]
    assert bill.revenue == Decimal("104.00")
    with pytest.raises(UnknownPrice, match="no known price for 郁金香; ask the user"):
        await ledger.amend(thread.id, add=[{"name": "郁金香", "quantity": 1}])


async def test_amend_add_uses_the_bills_own_price_first(ledger: Ledger, thread: Thread) -> None:
    await ledger.save(thread.id, "2024-05-01", [item("向日葵", 1, "5", "12")])
    await ledger.learn_prices(thread.id, [{"name": "向日葵", "unit_price": "15"}], source="new.csv")
    bill = await ledger.amend(thread.id, add=[item("向日葵", 2)])
    assert len(bill.items) == 1
    assert (bill.items[0].quantity, bill.items[0].unit_price) == (Decimal("3"), Decimal("12"))


# --- amend -------------------------------------------------------------------------------


async def test_amend_add_merges_and_remove_reduces(ledger: Ledger, thread: Thread) -> None:
    first = await ledger.save(
        thread.id, "2024-05-01", [item("向日葵", 2, 5, 12), item("玫瑰", 3, 3, 8)]
    )
    bill = await ledger.amend(thread.id, add=[item("　向日葵", "2")])  # full-width space
    assert bill.id == first.id and bill.revision == 2
    assert bill.items[0].quantity == Decimal("4")
    bill = await ledger.amend(thread.id, remove=[{"name": "玫瑰", "quantity": 1}])
    assert bill.items[1].quantity == Decimal("2")
    bill = await ledger.amend(thread.id, remove=[{"name": "玫瑰"}])
    assert [i.name for i in bill.items] == ["向日葵"]
    assert bill.revision == 4
    assert bill.cost == Decimal("20.00")


async def test_remove_errors(ledger: Ledger, thread: Thread) -> None:
    await ledger.save(thread.id, "2024-05-01", [item("玫瑰", 3, 3, 8)])
    with pytest.raises(ToolError, match="only 3") as err:
        await ledger.amend(thread.id, remove=[{"name": "玫瑰", "quantity": 4}])
    assert err.value.code == "remove_too_many"
    with pytest.raises(ToolError, match="not on bill"):
        await ledger.amend(thread.id, remove=[{"name": "百合"}])
    with pytest.raises(ToolError, match="nothing to change"):
        await ledger.amend(thread.id)
    assert (await ledger.current(thread.id)).revision == 1  # type: ignore[union-attr]


async def test_remove_then_add_changes_a_price(ledger: Ledger, thread: Thread) -> None:
    await ledger.save(thread.id, "2024-05-01", [item("玫瑰", 3, 3, 8)])
    with pytest.raises(ToolError, match="remove the line") as err:
        await ledger.amend(thread.id, add=[item("玫瑰", 1, None, 9)])
    assert err.value.code == "conflicting_prices"
    bill = await ledger.amend(thread.id, remove=[{"name": "玫瑰"}], add=[item("玫瑰", 3, None, 9)])
    assert (bill.items[0].unit_cost, bill.items[0].unit_price) == (Decimal("3"), Decimal("9"))


async def test_amend_without_a_bill_and_of_another_thread(
    ledger: Ledger, store: Store, thread: Thread
) -> None:
    with pytest.raises(NotFound, match="no bill"):
        await ledger.amend(thread.id, add=[item("a", 1, 1, 2)])
    other = await store.get_or_create_thread("telegram:1:1")
    theirs = await ledger.save(other.id, "2024-05-01", [item("a", 1, 1, 2)])
    with pytest.raises(NotFound):
        await ledger.amend(thread.id, theirs.id, add=[item("a", 1)])
    with pytest.raises(NotFound):
        await ledger.get(theirs.id, thread_id=thread.id)
    assert (await ledger.get(theirs.id)).thread_key == "telegram:1:1"


async def test_revisions_are_append_only(ledger: Ledger, store: Store, thread: Thread) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2, 5, 12)], note="first")
    before = await revision_rows(store, bill.id)
    await ledger.amend(thread.id, add=[item("向日葵", 1)], note="one more")
    await ledger.amend(thread.id, add=[item("玫瑰", 1, 3, 8)])
    await ledger.undo(thread.id)
    await ledger.undo(thread.id)
    await ledger.undo(thread.id)
    after = await revision_rows(store, bill.id)
    assert after[0] == before[0]  # the first row is byte-for-byte what it was
    assert [r["revision"] for r in after] == [1, 2, 3, 4, 5, 6]
    assert [r["reason"] for r in after] == ["save", "amend", "amend", "undo", "undo", "undo"]
    assert after[1]["note"] == "one more"


# --- undo --------------------------------------------------------------------------------


async def test_undo_chain_walks_back_then_voids(
    ledger: Ledger, store: Store, thread: Thread
) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2, 5, 12)])
    await ledger.amend(thread.id, add=[item("向日葵", 1)])  # 3
    await ledger.amend(thread.id, add=[item("向日葵", 4)])  # 7

    qty = lambda b: [i.quantity for i in b.items]  # noqa: E731
    undone = await ledger.undo(thread.id)
    assert (undone.revision, qty(undone)) == (4, [Decimal("3")])
    undone = await ledger.undo(thread.id)
    assert (undone.revision, qty(undone)) == (5, [Decimal("2")])  # not back to 7: a chain
    voided = await ledger.undo(thread.id)
    assert voided.revision == 6 and voided.voided
    assert voided.items == [] and voided.profit == Decimal("0.00")
    assert await ledger.current(thread.id) is None
    assert await ledger.list() == []
    assert [b.id for b in await ledger.list(include_voided=True)] == [bill.id]
    async with store.engine.connect() as conn:
        assert (
            await conn.execute(sa.select(bills.c.voided).where(bills.c.id == bill.id))
        ).scalar() is True

    with pytest.raises(CommandError) as err:
        await ledger.undo(thread.id)
    assert err.value.message == "Nothing to undo." and err.value.zh == "没有可以撤销的修改。"
    with pytest.raises(CommandError):
        await ledger.undo(thread.id, bill.id)  # the voided bill itself
    with pytest.raises(ToolError, match="voided"):
        await ledger.amend(thread.id, bill.id, add=[item("向日葵", 1)])


async def test_amend_after_undo_then_undo_again(ledger: Ledger, thread: Thread) -> None:
    await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)])
    await ledger.amend(thread.id, add=[item("a", 1)])  # 2
    await ledger.undo(thread.id)  # 1
    await ledger.amend(thread.id, add=[item("a", 5)])  # 6
    bill = await ledger.undo(thread.id)
    assert bill.items[0].quantity == Decimal("1")


async def test_undo_with_nothing(ledger: Ledger, thread: Thread) -> None:
    with pytest.raises(CommandError, match="Nothing to undo"):
        await ledger.undo(thread.id)
    with pytest.raises(NotFound):
        await ledger.undo(thread.id, 12345)


async def test_undo_restores_the_other_bill_too(ledger: Ledger, thread: Thread) -> None:
    a = await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)])
    b = await ledger.save(thread.id, "2024-05-02", [item("b", 1, 1, 2)])
    assert (await ledger.current(thread.id)).id == b.id  # type: ignore[union-attr]
    await ledger.amend(thread.id, a.id, add=[item("a", 1)])
    assert (await ledger.current(thread.id)).id == a.id  # type: ignore[union-attr]  # last touched
    undone = await ledger.undo(thread.id, a.id)
    assert undone.id == a.id and undone.items[0].quantity == Decimal("1")


# --- idempotency -------------------------------------------------------------------------


async def test_replayed_save_writes_once(ledger: Ledger, store: Store, thread: Thread) -> None:
    args = ("2024-05-01", [item("向日葵", 2, 5, 12)])
    first = await ledger.save(thread.id, *args, run_id="run_1", call_id="call_1")
    again = await ledger.save(thread.id, *args, run_id="run_1", call_id="call_1")
    assert again == first
    assert len(await ledger.list()) == 1
    other_call = await ledger.save(thread.id, *args, run_id="run_1", call_id="call_2")
    # Issue 9: one bill per book and date, so another call revises it instead of adding one.
    assert (other_call.id, other_call.revision) == (first.id, first.revision + 1)


async def test_replayed_amend_writes_once_and_returns_its_revision(
    ledger: Ledger, store: Store, thread: Thread
) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2, 5, 12)])
    first = await ledger.amend(thread.id, add=[item("向日葵", 1)], run_id="r", call_id="c")
    await ledger.amend(thread.id, add=[item("向日葵", 10)])  # a later change by someone else
    replay = await ledger.amend(thread.id, add=[item("向日葵", 1)], run_id="r", call_id="c")
    assert replay.revision == first.revision == 2
    assert replay.items[0].quantity == Decimal("3")
    assert len(await revision_rows(store, bill.id)) == 3
    assert (await ledger.current(thread.id)).items[0].quantity == Decimal("13")  # type: ignore[union-attr]


async def test_a_failed_call_can_be_retried_with_the_same_ids(
    ledger: Ledger, thread: Thread
) -> None:
    with pytest.raises(UnknownPrice):
        await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2)], run_id="r", call_id="c")
    bill = await ledger.save(
        thread.id, "2024-05-01", [item("向日葵", 2, 5, 12)], run_id="r", call_id="c"
    )
    assert bill.revision == 1


# --- reads -------------------------------------------------------------------------------


async def test_to_json_field_set(ledger: Ledger, thread: Thread) -> None:
    bill = await ledger.save(thread.id, "2024-05-01", [item("向日葵", 2, 5, "12.5")])
    data = bill.to_json()
    assert set(data) == {
        "id", "book", "thread", "date", "currency", "revision", "items",
        "cost", "revenue", "profit", "created_at", "updated_at",
    }  # fmt: skip
    assert data["thread"] == "console:default"
    assert data["items"] == [
        {
            "name": "向日葵",
            "quantity": "2",
            "unit_cost": "5.00",
            "unit_price": "12.50",
            "cost": "10.00",
            "revenue": "25.00",
        }
    ]
    assert (data["cost"], data["revenue"], data["profit"]) == ("10.00", "25.00", "15.00")
    assert data["created_at"].endswith("Z") and "T" in data["created_at"]
    import json

    assert json.loads(json.dumps(data)) == data  # plain JSON, no Decimal or datetime inside


async def test_list_filters_and_order(ledger: Ledger, store: Store, thread: Thread) -> None:
    other = await store.get_or_create_thread("slack:T:C:1")
    b3 = await ledger.save(thread.id, "2024-05-03", [item("a", 1, 1, 2)])
    b1 = await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)])
    b2 = await ledger.save(other.id, "2024-05-02", [item("a", 1, 1, 2)])
    assert [b.id for b in await ledger.list()] == [b1.id, b2.id, b3.id]
    assert [b.id for b in await ledger.list(thread_id=thread.id)] == [b1.id, b3.id]
    assert [b.id for b in await ledger.list(date_from="2024-05-02")] == [b2.id, b3.id]
    assert [b.id for b in await ledger.list(date_to="2024-05-02", thread_id=other.id)] == [b2.id]
    with pytest.raises(ToolError):
        await ledger.list(date_from="May 1")


async def test_get_current_history(ledger: Ledger, thread: Thread) -> None:
    assert await ledger.current(thread.id) is None
    with pytest.raises(NotFound):
        await ledger.get(999)
    bill = await ledger.save(
        thread.id, "2024-05-01", [item("a", 1, 1, 2)], run_id="r1", call_id="c1"
    )
    await ledger.amend(thread.id, add=[item("a", 2)], note="more")
    got = await ledger.get(bill.id, thread_id=thread.id)
    assert isinstance(got, Bill) and got.revision == 2 and got.created_at == bill.created_at
    assert got == await ledger.current(thread.id)
    history = await ledger.history(bill.id)
    assert [(h["revision"], h["reason"], h["note"]) for h in history] == [
        (1, "save", None),
        (2, "amend", "more"),
    ]
    assert history[0]["run_id"] == "r1" and history[0]["call_id"] == "c1"
    assert history[1]["revenue"] == "6.00"
    with pytest.raises(NotFound):
        await ledger.history(999)


async def test_reserved_reason(ledger: Ledger, thread: Thread) -> None:
    with pytest.raises(ValueError, match="undo"):
        await ledger.save(thread.id, "2024-05-01", [item("a", 1, 1, 2)], reason="undo")


async def test_settings_currency(store: Store, thread: Thread, tmp_path: Any) -> None:
    s = Settings(data_dir=tmp_path / "d2", currency=" usd ", _env_file=None)  # type: ignore[call-arg]
    bill = await Ledger(store, s).save(thread.id, "2024-05-01", [item("a", 1, 1, 2)])
    assert bill.currency == "USD"
