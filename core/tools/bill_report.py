"""``bill_report``: cost, revenue and profit of this shop's book, per day/week/month/item.

Read-only. Counts each bill once at its latest revision and leaves voided bills out; money is
computed in code and returned as decimal strings (see :mod:`core.bills.report`).
"""

from __future__ import annotations

from typing import Any

from core.bills import Ledger
from core.bills.books import book_of_thread
from core.bills.report import BY_VALUES, build_report
from core.errors import UserError
from core.tools.base import ToolContext, ToolResult
from core.tools.bill_args import DATE, as_tool_error


class BillReportTool:
    """``bill_report``: totals of the shop's bills between two dates, grouped."""

    name = "bill_report"
    description = (
        "Cost, revenue and profit of the shop's bills per day, week, month or item, with the "
        "total, between two dates (inclusive). Use it for 'how much did we make this week'."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "date_from": DATE,
            "date_to": DATE,
            "by": {"type": "string", "enum": list(BY_VALUES), "description": "default day"},
        },
        "additionalProperties": True,
    }
    needs_approval = False

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        book = book_of_thread(ctx.thread)
        try:
            bills = await self._ledger.list(
                book=book, date_from=args.get("date_from"), date_to=args.get("date_to")
            )
            report = build_report(
                bills,
                book=book,
                date_from=args.get("date_from"),
                date_to=args.get("date_to"),
                by=args.get("by") or "day",
            )
        except UserError as exc:
            raise as_tool_error(exc) from exc
        output = report.to_json()
        output["currencies"] = report.currencies
        return ToolResult(output=output)

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        start, end, by = args.get("date_from"), args.get("date_to"), args.get("by") or "day"
        if lang == "zh":
            return f"账单报表（{start or '最早'} 至 {end or '最近'}，按 {by}）"
        return f"Bill report ({start or 'start'} to {end or 'now'}, by {by})"
