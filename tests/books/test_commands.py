"""The book's commands through the facade, model-free: /bill twice, /add with prices, /undo,
/history, /report with its chart, and the words people see (never Python reprs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.app import Incoming, Tallybot
from core.config import Settings
from core.events import FileProduced, Reply

DAY1 = "花名,数量,进价,售价\n玫瑰,10,2.50,6.00\n百合,4,5.00,12.00\n"
DAY1_AGAIN = "花名,数量,进价,售价\n玫瑰,12,2.50,6.00\n"
KEY_A = "slack:T1:C1:1700.1"
KEY_B = "slack:T1:C1:1700.2"


@pytest.fixture
def bot(any_bot: Tallybot) -> Tallybot:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_bot


async def say(
    bot: Tallybot, key: str, text: str, files: tuple[Incoming, ...] = (), **kw: Any
) -> list[Any]:
    return [e async for e in bot.handle(key, text, files=files, **kw)]


def texts(events: list[Any]) -> str:
    return "\n".join(e.text for e in events if isinstance(e, Reply))


def csv(name: str, body: str) -> Incoming:
    return Incoming(name, data=body.encode())


async def test_bill_twice_replaces_and_undo_restores(bot: Tallybot) -> None:
    first = await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1.csv", DAY1),), lang="zh", user="U1")
    assert "账单 #1" in texts(first) and "成本 45.00" in texts(first)
    # Another thread of the same channel, the same date: the same bill, replaced.
    again = await say(bot, KEY_B, "/bill 2026-11-30", (csv("d1b.csv", DAY1_AGAIN),), lang="zh")
    words = texts(again)
    assert "已有账单 #1" in words and "之前：成本 45.00，收入 108.00，利润 63.00" in words
    assert "/undo" in words and "第 2 版" in words
    listed = await bot.ledger.list(book="slack:T1:C1")
    assert [(b.id, b.revision) for b in listed] == [(1, 2)]
    undone = await say(bot, KEY_B, "/undo", lang="zh")
    assert "成本 45.00" in texts(undone)
    en = await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1c.csv", DAY1_AGAIN),), lang="en")
    assert "Bill #1 for 2026-11-30 already existed; its items were replaced" in texts(en)


async def test_add_with_prices_and_the_syntax_when_unknown(bot: Tallybot) -> None:
    await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1.csv", DAY1),), lang="zh")
    added = await say(bot, KEY_A, "/add 2 牡丹 8/15", lang="zh")
    assert "牡丹" in texts(added) and "成本 61.00" in texts(added)
    zh = texts(await say(bot, KEY_A, "/add 2 芍药", lang="zh"))
    assert "还不知道 芍药 的价格" in zh and "/add 2 芍药 进价/售价" in zh
    assert "/add 2 牡丹 8/15" in zh and "请向用户询问" not in zh
    en = texts(await say(bot, KEY_A, "/add 2 peony", lang="en"))
    assert "/add 2 peony COST/PRICE" in en and "ask the user" not in en
    # Prices learnt in one thread fill /add in another thread of the place.
    await say(bot, KEY_B, "/bill 2026-12-01", (csv("d2.csv", DAY1),), lang="zh")
    filled = await say(bot, KEY_B, "/add 1 牡丹", lang="zh")
    assert "成本 53.00" in texts(filled)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("-3 玫瑰", "数量必须是正数"),
        ("1e30 玫瑰", "1e30 太大"),
        ("1e9 玫瑰", "数量超过 1000000000"),  # read as 1000000000, over the bound with 10 more
    ],
)
async def test_add_refuses_bad_quantities_in_plain_words(
    bot: Tallybot, args: str, expected: str
) -> None:
    await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1.csv", DAY1),), lang="zh")
    words = texts(await say(bot, KEY_A, f"/add {args}", lang="zh"))
    assert expected in words
    assert "Decimal(" not in words
    bill = await bot.ledger.current((await bot.thread(KEY_A)).id)
    assert bill is not None and bill.revision == 1  # nothing written


async def test_add_reads_an_exponent_as_the_number_it_is(bot: Tallybot) -> None:
    await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1.csv", DAY1),), lang="zh")
    words = texts(await say(bot, KEY_A, "/add 1e3 玫瑰", lang="zh"))
    assert "玫瑰  1010" in words


async def test_history_names_who_changed_what(bot: Tallybot) -> None:
    await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1.csv", DAY1),), lang="en", user="U1",
              user_name="Mei")  # fmt: skip
    await say(bot, KEY_B, "/add 2 百合", lang="en", user="U2")  # no current bill in thread B
    await say(bot, KEY_A, "/add 2 百合", lang="en", user="U2", user_name="Bo")
    await say(bot, "telegram:42:0", "/bill 2026-11-30", (csv("t.csv", DAY1),), user="42")
    words = texts(await say(bot, KEY_B, "/history 1", lang="en"))
    assert "rev 1" in words and "Mei (slack:U1)" in words and "command · /bill d1.csv" in words
    assert "Bo (slack:U2)" in words and "~ 百合 quantity 4 → 6" in words
    assert "+ 玫瑰 10 × 2.50/6.00" in words
    # Bill 2 is the Telegram chat's: another book, so not found here.
    assert "no bill #2" in texts(await say(bot, KEY_B, "/history 2", lang="en"))
    revisions = await bot.ledger.revisions(2)
    assert revisions[0].actor is not None and revisions[0].actor.id == "telegram:42"


async def test_report_week_table_and_chart(bot: Tallybot, settings: Settings) -> None:
    await say(bot, KEY_A, "/bill 2026-11-30", (csv("d1.csv", DAY1),), lang="zh")
    await say(bot, KEY_B, "/bill 2026-12-01", (csv("d2.csv", DAY1_AGAIN),), lang="zh")
    await say(bot, KEY_B, "/bill 2026-12-01", (csv("d2b.csv", DAY1_AGAIN),), lang="zh")  # again
    events = await say(bot, KEY_A, "/report 2026-11-30..2026-12-06", lang="zh")
    table = texts(events)
    assert "2026-11-30" in table and "2026-12-01" in table
    assert table.splitlines()[-1].split() == ["合计", "75.00", "180.00", "105.00", "2"]
    charts = [e for e in events if isinstance(e, FileProduced)]
    assert len(charts) == 1 and charts[0].mime == "image/png"
    assert Path(charts[0].path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_item = texts(await say(bot, KEY_A, "/report 2026-11 by item", lang="en"))
    assert "玫瑰" in by_item and "百合" in by_item
    bad = texts(await say(bot, KEY_A, "/report last-year", lang="en"))
    assert "unknown period" in bad
    empty = await say(bot, KEY_A, "/report 2020-01", lang="en")
    assert "(no bills)" in texts(empty) and not [e for e in empty if isinstance(e, FileProduced)]
