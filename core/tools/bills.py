"""Bill tools the model calls: ``amend_bill``, ``get_bill``, ``list_bills`` (``save_bill`` is
:mod:`core.tools.save_bill`).

Each is a thin shell over :class:`core.bills.Ledger`: the registry validates arguments against
``parameters`` (Draft 2020-12), the ledger validates meaning (positive quantities, real dates,
known prices) and recomputes every total. Writes pass ``(ctx.run_id, ctx.call_id)`` so a call
replayed after a crash returns the revision it wrote the first time.

Number arguments (quantities, unit prices) accept a JSON number or a decimal string: strings are
exact ("0.1" stays 0.1) and some models send them. Extra properties are accepted and ignored —
in particular a ``total``/``cost``/``revenue`` the model computed itself is never stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.bills import Ledger, format_money
from core.bills.books import actor_of, book_of_thread
from core.errors import ToolError, UserError
from core.tools.base import Tool, ToolContext, ToolResult
from core.tools.bill_args import (
    BILL_ID,
    DATE,
    ITEM,
    NOTE,
    REMOVE_ITEM,
    as_tool_error,
    items_phrase,
    write_output,
)
from core.tools.save_bill import SaveBillTool


class AmendBillTool:
    """``amend_bill``: add or remove items on a bill as a new revision (a write)."""

    name = "amend_bill"
    description = (
        "Change a bill (a new revision): 'remove' first, then 'add'. To change a price, remove "
        "the item and add it again."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "bill_id": BILL_ID,
            "add": {"type": "array", "items": ITEM, "maxItems": 500},
            "remove": {"type": "array", "items": REMOVE_ITEM, "maxItems": 500},
            "note": NOTE,
        },
        "anyOf": [
            {"required": ["add"], "properties": {"add": {"minItems": 1}}},
            {"required": ["remove"], "properties": {"remove": {"minItems": 1}}},
        ],
        "additionalProperties": True,
    }
    needs_approval = True

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            bill = await self._ledger.amend(
                ctx.thread.id,
                args.get("bill_id"),
                add=args.get("add") or (),
                remove=args.get("remove") or (),
                note=args.get("note"),
                run_id=ctx.run_id,
                call_id=ctx.call_id,
                actor=actor_of(ctx.thread),
            )
        except UserError as exc:
            raise as_tool_error(exc) from exc
        return ToolResult(output=write_output(bill), bills_changed=[bill.id])

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        bill_id = args.get("bill_id")
        add = items_phrase(args.get("add"), lang)
        remove = items_phrase(args.get("remove"), lang)
        if lang == "zh":
            target = f"账单 #{bill_id}" if bill_id else "当前账单"
            parts = [p for p in (add and f"添加 {add}", remove and f"删除 {remove}") if p]
            return f"修改{target}：{'；'.join(parts) or '无改动'}"
        target = f"bill #{bill_id}" if bill_id else "the current bill"
        parts = [p for p in (add and f"add {add}", remove and f"remove {remove}") if p]
        return f"Change {target}: {'; '.join(parts) or 'nothing'}"


class GetBillTool:
    """``get_bill``: read one bill of this conversation (read-only)."""

    name = "get_bill"
    description = "Get a bill with its items and totals."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"bill_id": BILL_ID},
        "additionalProperties": True,
    }
    needs_approval = False

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        bill_id = args.get("bill_id")
        try:
            if bill_id is None:
                bill = await self._ledger.current(ctx.thread.id)
                if bill is None:
                    raise ToolError(
                        "there is no bill in this conversation yet",
                        code="not_found",
                        zh="本对话还没有账单",
                    )
            else:
                bill = await self._ledger.get(bill_id, thread_id=ctx.thread.id)
        except UserError as exc:
            raise as_tool_error(exc) from exc
        return ToolResult(output=bill.to_json())

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        bill_id = args.get("bill_id")
        if lang == "zh":
            return f"查看账单 #{bill_id}" if bill_id else "查看当前账单"
        return f"Show bill #{bill_id}" if bill_id else "Show the current bill"


class ListBillsTool:
    """``list_bills``: this conversation's bills with totals (read-only, no items).

    Items are left out to keep the output small; ``get_bill`` returns them for one bill.
    Totals are summed per currency.
    """

    name = "list_bills"
    description = (
        "List this conversation's bills with totals, optionally between two dates (inclusive)."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"date_from": DATE, "date_to": DATE},
        "additionalProperties": True,
    }
    needs_approval = False

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            found = await self._ledger.list(
                book=book_of_thread(ctx.thread),
                date_from=args.get("date_from"),
                date_to=args.get("date_to"),
            )
        except UserError as exc:
            raise as_tool_error(exc) from exc
        totals: dict[str, dict[str, Decimal]] = {}
        for b in found:
            sums = totals.setdefault(
                b.currency, dict.fromkeys(("cost", "revenue", "profit"), Decimal(0))
            )
            sums["cost"] += b.cost
            sums["revenue"] += b.revenue
            sums["profit"] += b.profit
        return ToolResult(
            output={
                "bills": [
                    {
                        "id": b.id,
                        "date": b.date,
                        "currency": b.currency,
                        "revision": b.revision,
                        "item_count": len(b.items),
                        "cost": format_money(b.cost),
                        "revenue": format_money(b.revenue),
                        "profit": format_money(b.profit),
                    }
                    for b in found
                ],
                "totals": {
                    cur: {k: format_money(v) for k, v in sums.items()}
                    for cur, sums in totals.items()
                },
            }
        )

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        start, end = args.get("date_from"), args.get("date_to")
        if lang == "zh":
            span = f"（{start or '最早'} 至 {end or '最近'}）" if start or end else ""
            return f"列出本对话的账单{span}"
        span = f" from {start or 'the start'} to {end or 'now'}" if start or end else ""
        return f"List this conversation's bills{span}"


def bill_tools(ledger: Ledger) -> list[Tool]:
    """The four bill tools bound to ``ledger``, ready for a :class:`ToolRegistry`."""
    return [SaveBillTool(ledger), AmendBillTool(ledger), GetBillTool(ledger), ListBillsTool(ledger)]
