"""Report rules (each bill once, at its latest revision; voided ones out), periods, schemas."""

from __future__ import annotations

from datetime import date
from typing import Any

import jsonschema
import pytest

from core.app import Tallybot
from core.bills import Ledger
from core.bills.report import build_report, period
from core.config import Settings
from core.errors import CommandError
from core.store import Store
from core.tools.bill_report import BillReportTool
from core.tools.save_bill import SaveBillTool


def rose(qty: Any) -> list[dict[str, Any]]:
    return [{"name": "玫瑰", "quantity": qty, "unit_cost": 3, "unit_price": 8}]


async def test_revised_and_voided_bills_are_counted_once(
    any_ledger: Ledger, any_store: Store
) -> None:
    t = await any_store.get_or_create_thread("telegram:7:0")
    await any_ledger.save(t.id, "2026-11-30", rose(1))
    await any_ledger.save(t.id, "2026-11-30", rose(2))  # replaces: revision 2
    await any_ledger.amend(t.id, add=rose(1))  # revision 3: 3 roses
    gone = await any_ledger.save(t.id, "2026-12-01", rose(9))
    await any_ledger.undo(t.id, gone.id)  # voided
    bills = await any_ledger.list(book="telegram:7", include_voided=True)
    report = build_report(bills, book="telegram:7", date_from=None, date_to=None, by="day")
    assert report.to_json()["rows"] == [
        {"key": "2026-11-30", "cost": "9.00", "revenue": "24.00", "profit": "15.00", "bills": 1}
    ]
    assert report.to_json()["total"] == {"cost": "9.00", "revenue": "24.00", "profit": "15.00"}
    by_month = build_report(bills, book=None, date_from=None, date_to=None, by="month")
    assert [r.key for r in by_month.rows] == ["2026-11"]


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("week", ("2026-11-30", "2026-12-06")),
        ("", ("2026-11-30", "2026-12-06")),
        ("today", ("2026-12-02", "2026-12-02")),
        ("month", ("2026-12-01", "2026-12-31")),
        ("2026-02", ("2026-02-01", "2026-02-28")),
        ("2026-12-05..2026-12-01", ("2026-12-01", "2026-12-05")),
        ("2026-11-30", ("2026-11-30", "2026-11-30")),
    ],
)
def test_periods(text: str, span: tuple[str, str]) -> None:
    assert period(text, date(2026, 12, 2)) == span


@pytest.mark.parametrize("text", ["yesterday", "2026-13", "2026-11-31"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(CommandError, match="unknown period"):
        period(text, date(2026, 12, 2))


def test_tool_schemas_validate(store: Store, settings: Settings) -> None:
    ledger = Ledger(store, settings)
    for tool in (SaveBillTool(ledger), BillReportTool(ledger)):
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
    save = jsonschema.Draft202012Validator(SaveBillTool.parameters)
    assert save.is_valid({"file": "a.csv"}) and save.is_valid({"items": rose(1)})
    assert not save.is_valid({"file": "a.csv", "items": rose(1)}) and not save.is_valid({})
    report = jsonschema.Draft202012Validator(BillReportTool.parameters)
    assert report.is_valid({"by": "week"}) and not report.is_valid({"by": "year"})


async def test_thread_scope_setting_keeps_conversations_apart(settings: Settings) -> None:
    settings.book_scope = "thread"
    async with await Tallybot.open(settings) as bot:
        a = await bot.thread("slack:T1:C1:1")
        b = await bot.thread("slack:T1:C1:2")
        assert a.book == f"thread:{a.id}" and b.book == f"thread:{b.id}"


async def test_console_place_names_the_book(settings: Settings) -> None:
    async with await Tallybot.open(settings) as bot:
        assert (await bot.thread("console:x")).book == "console:default"
        moved = await bot.thread("console:x", place="console:shop2")
        assert moved.book == "console:shop2"
        assert (await bot.store.get_thread(moved.id)).book == "console:shop2"
