"""``save_bill``: the day's bill from line items or from an attached sales file.

Exactly one of ``items`` or ``file``. With ``file`` tallybot reads the rows itself, with the
same column mapping as ``/bill``, and computes every total in code: a bill never depends on a
model copying rows. A file with a date column gives one bill per date; a workbook is read
sheet by sheet and the result names every sheet. Saving a date that already has a bill
replaces its items in a new revision; the result says ``replaced: true`` with the totals
before.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from core.bills import Ledger
from core.bills.books import actor_of
from core.bills.day_bills import save_file, saved
from core.domain import FileRef
from core.errors import ToolError, UserError
from core.tools.base import ToolContext, ToolResult
from core.tools.bill_args import DATE, ITEM, NOTE, as_tool_error, items_phrase


class SaveBillTool:
    """``save_bill``: record a day's bill from items or a sales file (a write)."""

    name = "save_bill"
    description = (
        "Save one day's bill; it becomes the current bill. Sales in an attached file: pass `file` "
        "(its name), never `items`. Totals you send are ignored. Saving a date again replaces "
        "its items (replaced: true, with the totals before)."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "date": {
                **DATE,
                "description": "YYYY-MM-DD; default today",
            },  # fmt: skip
            "items": {"type": "array", "items": ITEM, "minItems": 1, "maxItems": 500},
            "file": {
                "type": "string",
                "minLength": 1,
                "maxLength": 300,
                "description": "Attached sales file name.",
            },
            "currency": {
                "type": "string",
                "pattern": r"^[A-Za-z]{3}$",
                "description": "e.g. CNY",
            },
            "note": NOTE,
        },
        "oneOf": [{"required": ["items"]}, {"required": ["file"]}],
        "additionalProperties": True,
    }
    needs_approval = True

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        day = args.get("date") or date.today().isoformat()
        actor = actor_of(ctx.thread)
        try:
            if args.get("file") is not None:
                return await self._from_file(args, ctx, day)
            bill = await self._ledger.save(
                ctx.thread.id,
                day,
                args["items"],
                currency=args.get("currency"),
                note=args.get("note"),
                run_id=ctx.run_id,
                call_id=ctx.call_id,
                actor=actor,
            )
        except UserError as exc:
            raise as_tool_error(exc) from exc
        result = await saved(self._ledger, bill)
        return ToolResult(output=result.to_json(), bills_changed=[bill.id])

    async def _from_file(self, args: dict[str, Any], ctx: ToolContext, day: str) -> ToolResult:
        ref = _find_file(ctx.files, str(args["file"]))
        days, results = await save_file(
            self._ledger,
            ctx.thread.id,
            Path(ref.path),
            ref.name,
            default_date=day,
            only=args.get("date") if args.get("date") else None,
            currency=args.get("currency"),
            note=args.get("note") or f"save_bill file {ref.name}",
            run_id=ctx.run_id,
            call_id=ctx.call_id,
            actor=actor_of(ctx.thread),
        )
        output = {
            "file": ref.name,
            "sheets": [s.to_json() for s in days.sheets],
            "skipped_sheets": days.skipped,
            "bills": [r.to_json() for r in results],
        }
        return ToolResult(output=output, bills_changed=[r.bill.id for r in results])

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        day = args.get("date")
        what = args.get("file") or items_phrase(args.get("items"), lang)
        if lang == "zh":
            return f"保存 {day} 的账单：{what}" if day else f"保存今天的账单：{what}"
        return f"Save the bill for {day or 'today'}: {what}"


def _find_file(files: list[FileRef], name: str) -> FileRef:
    """The newest attached table called ``name`` (case and surrounding spaces ignored)."""
    wanted = name.strip().casefold()
    tables = [f for f in files if f.kind == "table"]
    for ref in reversed(tables):
        if ref.name.strip().casefold() == wanted or Path(ref.name).stem.casefold() == wanted:
            return ref
    known = ", ".join(f.name for f in tables) or "none"
    raise ToolError(
        f"no sales file called {name!r} in this conversation (attached tables: {known})",
        code="file_not_found",
        zh=f"本对话中没有名为 {name!r} 的销售文件（已上传的表格：{known}）",
    )
