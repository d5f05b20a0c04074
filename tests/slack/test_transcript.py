"""The flower-shop scenario end to end, as it reaches Slack, plus the bill rows it leaves.

Upload the sales CSV in the assistant panel, ask for today's cost and revenue (the scripted
model saves the bill), then "另外还有2支向日葵，补充下这份账单" (it amends the bill). Run with
``pytest tests/slack/test_transcript.py -s`` to see the transcript and the database rows.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

from core.models.scripted import ScriptedModel, call, text

from . import payloads as p
from .conftest import Harness
from .fake_slack import Call, FakeSlack
from .test_files_approvals import approval_message, click

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flower_sales.csv"
FALLBACK = "花名,数量,进价,售价\n玫瑰,10,2.50,6.00\n百合,4,5.00,12.00\n向日葵,6,3.00,8.00\n"
_SHOWN = {
    "chat.postMessage": ("text", "blocks"),
    "chat.update": ("ts", "text", "blocks"),
    "chat.startStream": ("thread_ts", "chunks"),
    "chat.appendStream": ("ts", "chunks"),
    "chat.stopStream": ("ts", "chunks"),
    "chat.postEphemeral": ("text",),
    "assistant.threads.setStatus": ("status",),
    "assistant.threads.setSuggestedPrompts": ("prompts",),
    "assistant.threads.setTitle": ("title",),
    "reactions.add": ("name",),
    "reactions.remove": ("name",),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files", "thread_ts"),
}


def _brief(call_: Call) -> str:
    parts = []
    for key in _SHOWN[call_.method]:
        value = call_.args.get(key)
        if value in (None, "", []):
            continue
        if key == "chunks":
            value = "".join(c.get("text", "") for c in value)
        elif key == "blocks":
            value = " | ".join(
                (b.get("text") or {}).get("text")
                or " ".join(
                    (e.get("text") or {}).get("text", "")
                    if isinstance(e.get("text"), dict)
                    else e.get("text", "")
                    for e in b.get("elements", [])
                )
                for b in value
            )
        elif not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={value!s}")
    return f"  {call_.method:<38} " + "; ".join(parts)


def transcript(fake: FakeSlack, since: int) -> list[str]:
    return [_brief(c) for c in fake.calls[since:] if c.method in _SHOWN]


def _items() -> tuple[bytes, list[dict[str, str]]]:
    raw = EXAMPLE.read_bytes() if EXAMPLE.is_file() else FALLBACK.encode()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    items = [
        {"name": r["花名"], "quantity": r["数量"], "unit_cost": r["进价"], "unit_price": r["售价"]}
        for r in rows
    ]
    return raw, items


def _totals(items: list[dict[str, str]]) -> tuple[Decimal, Decimal]:
    cost = sum((Decimal(i["quantity"]) * Decimal(i["unit_cost"]) for i in items), Decimal(0))
    revenue = sum((Decimal(i["quantity"]) * Decimal(i["unit_price"]) for i in items), Decimal(0))
    return cost, revenue


async def test_flower_shop_transcript(slack: Harness, model: ScriptedModel) -> None:
    fake = slack.fake
    fake.locales[p.ALICE] = "zh-CN"
    raw, items = _items()
    cost, revenue = _totals(items)
    sunflower = next(i for i in items if i["name"] == "向日葵")
    cost2 = cost + 2 * Decimal(sunflower["unit_cost"])
    revenue2 = revenue + 2 * Decimal(sunflower["unit_price"])
    model.add(
        [
            *text("我读取了 flower_sales.csv，", "共 ", f"{len(items)} 种花。"),
            call("save_bill", {"date": "2024-05-01", "items": items}, "call_save"),
        ],
        text(
            f"今天的账单已保存：成本 **{cost:.2f}** 元，收入 **{revenue:.2f}** 元，",
            f"利润 **{revenue - cost:.2f}** 元。",
        ),
        [call("amend_bill", {"add": [{"name": "向日葵", "quantity": 2}]}, "call_amend")],
        text(
            f"已补充 2 支向日葵：成本 {cost2:.2f} 元，收入 {revenue2:.2f} 元，利润 {revenue2 - cost2:.2f} 元。"
        ),
    )
    lines: list[str] = []
    mark = len(fake.calls)

    started = p.assistant_thread_started()
    thread_ts = started["event"]["assistant_thread"]["thread_ts"]
    lines.append("» assistant_thread_started (Alice opens tallybot in the assistant panel)")
    await slack.event(started)
    lines += transcript(fake, mark)

    shared = fake.host_file("flower_sales.csv", raw)
    lines.append("» Alice uploads flower_sales.csv: 统计今天的成本和收入")
    mark = len(fake.calls)
    await slack.event(p.message("统计今天的成本和收入", thread_ts=thread_ts, files=[shared]))
    lines += transcript(fake, mark)

    ask = approval_message(fake, p.DM, thread_ts)
    lines.append("» Alice clicks 确认")
    mark = len(fake.calls)
    await slack.deliver("interactive", click(ask, "tallybot_approve"))
    lines += transcript(fake, mark)

    lines.append("» Alice: 另外还有2支向日葵，补充下这份账单")
    mark = len(fake.calls)
    await slack.event(p.message("另外还有2支向日葵，补充下这份账单", thread_ts=thread_ts))
    lines += transcript(fake, mark)

    ask2 = approval_message(fake, p.DM, thread_ts)
    assert ask2.ts != ask.ts and "向日葵 ×2" in ask2.blocks[1]["text"]["text"]
    lines.append("» Alice clicks 确认")
    mark = len(fake.calls)
    await slack.deliver("interactive", click(ask2, "tallybot_approve"))
    lines += transcript(fake, mark)

    [bill] = await slack.bot.ledger.list()
    data = bill.to_json()
    lines.append(
        f"» database: bill #{data['id']} {data['date']} revision {data['revision']} ({data['thread']})"
    )
    lines += [
        f"  {i['name']:<6} qty {i['quantity']:>4}  cost/unit {i['unit_cost']:>6}  price/unit {i['unit_price']:>6}  "
        f"cost {i['cost']:>8}  revenue {i['revenue']:>8}"
        for i in data["items"]
    ]
    lines.append(
        f"  total cost {data['cost']}  revenue {data['revenue']}  profit {data['profit']} {data['currency']}"
    )
    print("\n" + "\n".join(lines))

    assert data["revision"] == 2
    assert Decimal(data["cost"]) == cost2 and Decimal(data["revenue"]) == revenue2
    rows = {i["name"]: i for i in data["items"]}
    assert Decimal(rows["向日葵"]["quantity"]) == Decimal(sunflower["quantity"]) + 2
    answers = [m.text for m in fake.thread(p.DM, thread_ts) if m.streamed]
    assert answers[-1].startswith("已补充 2 支向日葵")
    assert f"{revenue:.2f}" in answers[1]
