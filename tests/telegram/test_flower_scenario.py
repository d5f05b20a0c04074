"""The acceptance scenario, end to end through Telegram.

A shop owner sends the flower sales CSV and asks for today's cost and revenue; the (scripted)
model saves the bill, the owner approves with the button; then "另外还有2支向日葵，补充下这份账单"
(we also sold 2 sunflowers, add them to the bill) → amend_bill → approve. Run with ``-s`` to see
what reached the fake Bot API server and the bill rows the database holds afterwards.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.models.base import FunctionOutput, ModelRequest
from core.models.scripted import call, text
from core.store.tables import bill_revisions, bills
from tests.telegram.fake_api import Call, FakeBotAPI

OWNER = 4242
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flower_sales.csv"
FALLBACK_CSV = "花名,数量,进价,售价\n玫瑰,40,3.5,10\n百合,12,6,18\n康乃馨,30,2,5\n向日葵,20,4,12\n"
NOISE = {"getUpdates", "sendChatAction", "getMe", "deleteWebhook"}


def flower_csv() -> tuple[str, bytes]:
    if EXAMPLE.exists():
        return EXAMPLE.name, EXAMPLE.read_bytes()
    return "flower_sales.csv", FALLBACK_CSV.encode()


def sales_items(data: bytes) -> list[dict[str, Any]]:
    """What a model would read out of the sheet: one line item per flower (summed by name)."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    keys = list(rows[0])
    name, qty, cost, price = (
        next(k for k in keys if word in k) for word in ("花", "数", "进", "售")
    )
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = merged.setdefault(
            row[name],
            {"name": row[name], "quantity": 0, "unit_cost": row[cost], "unit_price": row[price]},
        )
        item["quantity"] += int(Decimal(row[qty]))
    return list(merged.values())


def state_totals(request: ModelRequest) -> list[Any]:
    """A model turn that reports the totals exactly as the bill tool returned them."""
    result = json.loads([i for i in request.items if isinstance(i, FunctionOutput)][-1].output)
    return text(
        f"账单 #{result['bill_id']}（第 {result['revision']} 版）：",
        f"成本 **{result['cost']}** 元，收入 **{result['revenue']}** 元，",
        f"利润 **{result['profit']}** 元。",
    )


def buttons(api: FakeBotAPI, after: int) -> Call | None:
    for c in api.sent("sendMessage", OWNER)[after:]:
        if c.params.get("reply_markup"):
            return c
    return None


def transcript(api: FakeBotAPI) -> list[str]:
    """The calls that reached the fake Bot API server, one line each (long polls left out)."""
    lines = []
    for c in api.calls:
        if c.method in NOISE:
            continue
        params = {k: v for k, v in c.params.items() if k not in ("chat_id",)}
        if c.method == "setMyCommands":
            params = {
                "language_code": params.get("language_code"),
                "commands": [x["command"] for x in params["commands"]],
            }
        if "reply_markup" in params:
            params["reply_markup"] = [
                (b["text"], b["callback_data"])
                for row in params["reply_markup"]["inline_keyboard"]
                for b in row
            ]
        files = {k: f"<{len(v)} bytes>" for k, v in c.files.items()}
        lines.append(f"{c.status} {c.method} {json.dumps({**params, **files}, ensure_ascii=False)}")
    return lines


async def test_flower_csv_bill_then_two_more_sunflowers(start, api) -> None:
    name, data = flower_csv()
    items = sales_items(data)
    today = date.today().isoformat()
    turns = [
        [call("save_bill", {"date": today, "items": items}, "call_save")],
        state_totals,
        [call("amend_bill", {"add": [{"name": "向日葵", "quantity": 2}]}, "call_amend")],
        state_totals,
    ]
    doc = api.add_file(name, data)
    async with start(turns) as run:
        # 1. The CSV with the question as its caption.
        api.push(
            {
                "message": api.message(
                    OWNER, "今天的成本和收入是多少？", document=doc, language_code="zh-hans"
                )
            }
        )
        first = await api.wait_for(lambda s: buttons(s, 0))
        api.push(
            api.callback(
                first, first.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            )
        )
        await api.wait_for(lambda s: any("第 1 版" in t for t in s.texts(OWNER)))
        # 2. The follow-up in the same chat.
        seen = len(api.sent("sendMessage", OWNER))
        api.push({"message": api.message(OWNER, "另外还有2支向日葵，补充下这份账单")})
        second = await api.wait_for(lambda s: buttons(s, seen))
        api.push(
            api.callback(
                second, second.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            )
        )
        await api.wait_for(lambda s: any("第 2 版" in t for t in s.texts(OWNER)))
        saved = await run.bot.ledger.list()
        history = await run.bot.ledger.history(saved[0].id)
        async with run.bot.store.engine.connect() as conn:
            bill_rows = (await conn.execute(sa.select(bills))).mappings().all()
            revision_rows = (
                (await conn.execute(sa.select(bill_revisions).order_by(bill_revisions.c.revision)))
                .mappings()
                .all()
            )

    print("\n=== what reached the fake Bot API server ===")
    for line in transcript(api):
        print(line)
    print("\n=== chat as the owner sees it ===")
    for line in api.texts(OWNER):
        print("---\n" + line)
    print("\n=== bills table ===")
    for row in bill_rows:
        print(dict(row))
    print("=== bill_revisions table ===")
    for row in revision_rows:
        print(
            {
                k: row[k]
                for k in (
                    "bill_id",
                    "revision",
                    "reason",
                    "cost",
                    "revenue",
                    "profit",
                    "run_id",
                    "tool_call_id",
                )
            }
        )
        for item in row["items"]:
            print("   ", item)

    assert len(saved) == 1 and saved[0].revision == 2
    first_items = {i["name"]: i for i in history[0]["items"]}
    second_items = {i["name"]: i for i in history[1]["items"]}
    assert (
        Decimal(second_items["向日葵"]["quantity"])
        == Decimal(first_items["向日葵"]["quantity"]) + 2
    )
    # The price of the two extra sunflowers came from the sheet, not from the model.
    extra_revenue = Decimal(history[1]["revenue"]) - Decimal(history[0]["revenue"])
    assert extra_revenue == 2 * Decimal(first_items["向日葵"]["unit_price"])
    final = api.texts(OWNER)[-1]
    assert f"利润 <b>{history[1]['profit']}</b>" in final or history[1]["profit"] in final
    assert [c.params["text"] for c in api.sent("answerCallbackQuery")] == ["已确认。", "已确认。"]
    assert [r["tool_call_id"] for r in revision_rows] == ["call_save", "call_amend"]
