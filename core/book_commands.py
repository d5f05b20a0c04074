"""The book's model-free commands: ``/report`` and ``/history`` (registered in
:mod:`core.commands`, which words every other command).

``/report [today|week|month|YYYY-MM|YYYY-MM-DD..YYYY-MM-DD] [by day|item]`` answers with a table
of cost, revenue and profit per row plus the total, and a PNG chart of profit per day.
``/history [ID]`` lists a bill's revisions with when, who, why and the item changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from core.bills.books import book_of_thread
from core.bills.history import history_json, history_text
from core.bills.report import build_report, period, report_table
from core.errors import CommandError
from core.events import Event, FileProduced, Reply

if TYPE_CHECKING:
    from core.bills import Ledger
    from core.config import Settings
    from core.domain import FileRef, Thread


class BookHost(Protocol):
    """What these commands use of the bot (:class:`core.app.Tallybot` in production)."""

    settings: Settings
    ledger: Ledger


_REPORT_USAGE = CommandError(
    "usage: /report [today|week|month|YYYY-MM|YYYY-MM-DD..YYYY-MM-DD] [by day|item]",
    code="bad_report",
    zh="用法：/report [today|week|month|YYYY-MM|YYYY-MM-DD..YYYY-MM-DD] [by day|item]",
)


def _report_args(args: str) -> tuple[str, str]:
    words = args.split()
    by = "day"
    if "by" in words:
        at = words.index("by")
        if at + 1 >= len(words) or words[at + 1] not in ("day", "item", "week", "month"):
            raise _REPORT_USAGE
        by = words[at + 1]
        del words[at : at + 2]
    if len(words) > 1:
        raise _REPORT_USAGE
    return (words[0] if words else "week"), by


async def report(
    bot: BookHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    """``/report``: the table, then the chart of profit per day."""
    span, by = _report_args(args)
    start, end = period(span)
    book = book_of_thread(thread)
    bills = await bot.ledger.list(book=book, date_from=start, date_to=end)
    result = build_report(bills, book=book, date_from=start, date_to=end, by=by)  # type: ignore[arg-type]
    # kind "bill": every channel shows it monospace (code block, <pre>), as tables need.
    yield Reply(report_table(result, lang), kind="bill")
    if not result.daily:
        return
    from core.bills.chart import profit_chart

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = bot.settings.exports_dir / f"report-{start}-{end}-{stamp}-{thread.id[-6:]}.png"
    path = profit_chart(result, out)
    yield FileProduced(None, str(path), path.name, "image/png")


async def history(
    bot: BookHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    """``/history [ID]``: the revisions of bill ID (default: the current bill)."""
    bill_id: Any = args.strip().lstrip("#")
    if bill_id:
        if not bill_id.isdigit():
            raise CommandError(
                f"usage: /history [ID], got {args!r}", zh=f"用法：/history [编号]，收到 {args!r}"
            )
        bill_id = int(bill_id)
    else:
        current = await bot.ledger.current(thread.id)
        if current is None:
            yield Reply(
                "No current bill; send /history ID." if lang != "zh" else
                "当前没有账单；请发送 /history 编号。"
            )  # fmt: skip
            return
        bill_id = current.id
    revisions = await bot.ledger.revisions(bill_id, thread_id=thread.id)
    yield Reply(history_text(history_json(bill_id, revisions), lang), kind="info")
