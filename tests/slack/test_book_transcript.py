"""Issue 9 end to end in one Slack channel: two conversations, two days of files, one book.

Alice bills Monday's file with ``/bill`` in one thread; the next day Bob, in a new thread of
the same channel, asks the assistant to save Tuesday's file (the scripted model passes
``file``, never rows), then asks for ``/report week`` (table + PNG chart) and ``/history 1``.
Run with ``pytest tests/slack/test_book_transcript.py -s`` to see the transcript.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from core.models.scripted import ScriptedModel, call, text

from . import payloads as p
from .conftest import Harness
from .fake_slack import TEAM
from .test_files_approvals import approval_message, click
from .test_transcript import transcript

BOB = "U0BOB"
MONDAY = date.today() - timedelta(days=date.today().weekday())
TUESDAY = MONDAY + timedelta(days=1)
DAY1 = "花名,数量,进价,售价\n玫瑰,10,2.50,6.00\n百合,4,5.00,12.00\n"
DAY2 = "日期,花名,数量,进价,售价\n" + f"{TUESDAY},玫瑰,6,2.50,6.00\n{TUESDAY},向日葵,5,3.00,8.00\n"


async def test_two_conversations_of_one_channel_share_the_book(
    slack: Harness, model: ScriptedModel
) -> None:
    fake = slack.fake
    fake.locales[p.ALICE] = fake.locales[BOB] = "zh-CN"
    model.add(
        [call("save_bill", {"file": "tuesday.csv"}, "call_save")],
        text("已保存周二的账单：成本 30.00 元，收入 76.00 元，利润 46.00 元。"),
    )
    lines: list[str] = []

    lines.append(f"» #sales, thread 1 — Alice uploads monday.csv: @tallybot /bill {MONDAY}")
    mark = len(fake.calls)
    first = p.app_mention(f"/bill {MONDAY}", files=[fake.host_file("monday.csv", DAY1.encode())])
    thread1 = first["event"]["ts"]
    await slack.event(first)
    lines += transcript(fake, mark)

    lines.append(
        "» #sales, thread 2 (next day) — Bob uploads tuesday.csv: @tallybot 保存今天的账单"
    )
    mark = len(fake.calls)
    second = p.app_mention(
        "统计今天的成本和收入，并保存账单",
        user=BOB,
        files=[fake.host_file("tuesday.csv", DAY2.encode())],
    )
    thread2 = second["event"]["ts"]
    await slack.event(second)
    lines += transcript(fake, mark)
    ask = approval_message(fake, p.CHANNEL, thread2)
    lines.append("» Bob clicks 确认")
    mark = len(fake.calls)
    await slack.deliver("interactive", click(ask, "tallybot_approve", user=BOB))
    lines += transcript(fake, mark)

    lines.append("» thread 2 — Bob: @tallybot /report week")
    mark = len(fake.calls)
    await slack.event(p.app_mention("/report week", user=BOB, thread_ts=thread2))
    report_calls = fake.calls[mark:]
    lines += transcript(fake, mark)

    lines.append("» thread 1 — Alice: @tallybot /history 1")
    mark = len(fake.calls)
    await slack.event(p.app_mention("/history 1", thread_ts=thread1))
    history_calls = fake.calls[mark:]
    lines += transcript(fake, mark)
    print("\n" + "\n".join(lines))

    book = f"slack:{TEAM}:{p.CHANNEL}"
    every = await slack.bot.ledger.list()
    assert [(b.id, b.date, b.book) for b in every] == [
        (1, MONDAY.isoformat(), book),
        (2, TUESDAY.isoformat(), book),
    ]
    assert every[0].thread_key != every[1].thread_key  # made in two conversations
    tuesday = every[1]
    assert (tuesday.cost, tuesday.revenue) == (Decimal("30.00"), Decimal("76.00"))
    posted = " ".join(str(c.args.get("text", "")) for c in report_calls)
    assert "合计        75.00  184.00  109.00     2" in posted
    assert any(c.method == "files.completeUploadExternal" for c in report_calls)
    shown = " ".join(str(c.args.get("text", "")) for c in history_calls)
    assert "slack:U0ALICE" in shown and "/bill monday.csv" in shown
    revisions = await slack.bot.ledger.revisions(2)
    assert revisions[0].actor is not None and revisions[0].actor.id == f"slack:{BOB}"
