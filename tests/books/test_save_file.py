"""save_bill(file=...): rows read in code, one bill per date, every sheet named, nothing lost."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from core.app import Incoming, Tallybot
from core.domain import Thread
from core.tools.base import ToolContext, ToolRegistry, ToolResult
from core.tools.bills import bill_tools

KEY = "slack:T1:C1:1700.1"
TWELVE = "花名,数量,进价,售价\n" + "".join(f"花{i},{i},{i}.10,{i * 2}.50\n" for i in range(1, 13))
DATED = (
    "日期,花名,数量,进价,售价\n"
    "2026-11-30,玫瑰,10,2.50,6.00\n"
    "2026/11/30,百合,4,5.00,12.00\n"
    "2026-12-01,玫瑰,3,2.50,6.00\n"
)


def workbook() -> bytes:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "门店"
    for row in (["花名", "数量", "进价", "售价"], ["玫瑰", 10, 2.5, 6], ["百合", 4, 5, 12]):
        first.append(row)
    second = book.create_sheet("网店")
    for row in (["品名", "销量", "成本", "单价"], ["向日葵", 6, 3, 8]):
        second.append(row)
    notes = book.create_sheet("备注")
    notes.append(["说明"])
    notes.append(["周一下雨"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def bot(any_bot: Tallybot) -> Tallybot:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_bot


async def attach(bot: Tallybot, name: str, data: bytes) -> Thread:
    _ = [e async for e in bot.handle(KEY, "", files=[Incoming(name, data=data)], lang="zh")]
    return await bot.thread(KEY)


async def save(bot: Tallybot, thread: Thread, args: dict[str, Any], call: str = "c1") -> ToolResult:
    registry = ToolRegistry()
    for tool in bill_tools(bot.ledger):
        registry.register(tool)
    files = await bot.store.list_files(thread.id)
    ctx = ToolContext(bot.settings, bot.store, thread, "run_1", call, "zh", files)
    return await registry.call("save_bill", json.dumps(args), ctx)


async def test_every_row_of_the_file_is_billed(bot: Tallybot) -> None:
    thread = await attach(bot, "sales.csv", TWELVE.encode())
    result = await save(bot, thread, {"date": "2026-11-30", "file": "sales.csv"})
    assert not result.is_error
    (bill,) = result.output["bills"]
    assert len(bill["items"]) == 12
    cost = sum(Decimal(i) * Decimal(f"{i}.10") for i in range(1, 13))
    assert Decimal(bill["cost"]) == cost and bill["replaced"] is False
    assert result.output["sheets"] == [{"sheet": None, "rows": 12, "dates": ["2026-11-30"]}]


async def test_a_date_column_makes_one_bill_per_date(bot: Tallybot) -> None:
    thread = await attach(bot, "week.csv", DATED.encode())
    result = await save(bot, thread, {"file": "week.csv"})
    days = [(b["date"], b["cost"]) for b in result.output["bills"]]
    assert days == [("2026-11-30", "45.00"), ("2026-12-01", "7.50")]
    # Replayed after a crash: the same bills, nothing new.
    replay = await save(bot, thread, {"file": "week.csv"})
    assert [b["bill_id"] for b in replay.output["bills"]] == [
        b["bill_id"] for b in result.output["bills"]
    ]
    assert [b.revision for b in await bot.ledger.list(book="slack:T1:C1")] == [1, 1]
    # A date argument keeps that date only; saving it again replaces it.
    one = await save(bot, thread, {"file": "week.csv", "date": "2026-12-01"}, call="c2")
    (only,) = one.output["bills"]
    assert only["date"] == "2026-12-01" and only["replaced"] is True


async def test_every_sheet_of_a_workbook_is_read_and_named(bot: Tallybot) -> None:
    thread = await attach(bot, "shop.xlsx", workbook())
    result = await save(bot, thread, {"date": "2026-11-30", "file": "shop.xlsx"})
    out = result.output
    assert [s["sheet"] for s in out["sheets"]] == ["门店", "网店"]
    assert [s["rows"] for s in out["sheets"]] == [2, 1]
    assert out["skipped_sheets"] == ["备注"]
    (bill,) = out["bills"]
    assert {i["name"] for i in bill["items"]} == {"玫瑰", "百合", "向日葵"}
    assert bill["cost"] == "63.00"


async def test_bill_command_names_the_sheets_too(bot: Tallybot) -> None:
    events = [
        e
        async for e in bot.handle(
            KEY, "/bill 2026-11-30", files=[Incoming("shop.xlsx", data=workbook())], lang="zh"
        )
    ]
    words = "\n".join(getattr(e, "text", "") for e in events)
    assert "工作表“门店”2 行" in words and "工作表“网店”1 行" in words
    assert "工作表“备注”没有销售列，已跳过" in words


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"file": "nope.csv"}, "file_not_found"),
        ({"file": "bad.csv"}, "file_rejected"),
        ({"file": "sales.csv", "items": [{"name": "a", "quantity": 1}]}, "invalid_arguments"),
    ],
)
async def test_bad_files_are_clear_errors_and_save_nothing(
    bot: Tallybot, args: dict[str, Any], code: str
) -> None:
    await attach(bot, "sales.csv", TWELVE.encode())
    thread = await attach(bot, "bad.csv", (DATED + "昨天,玫瑰,1,2,3\n").encode())
    result = await save(bot, thread, args)
    assert result.is_error and result.output["error"]["code"] == code
    assert await bot.ledger.list() == []
