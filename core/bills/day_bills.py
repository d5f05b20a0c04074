"""Saving the day's bill: whether it replaced one, and bills for every day of a sales file.

One bill per book, date and currency (see :meth:`core.bills.Ledger.save`): saving a date
that already has a bill writes its next revision. :class:`Saved` says so, with the totals
before, for the reply and the tool result; ``/undo`` brings the old items back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.bills.model import Actor, Bill, Revision
from core.bills.money import format_money
from core.bills.sales_days import SalesDays, read_sales_days

if TYPE_CHECKING:
    from core.bills.ledger import Ledger

_CALL_ID_ROOM = 100  # tool_call_id is 120 characters; "#YYYY-MM-DD" must fit after it


@dataclass(slots=True)
class Saved:
    """A saved bill and, when it replaced the date's earlier items, the revision before."""

    bill: Bill
    before: Revision | None = None

    def to_json(self) -> dict[str, Any]:
        """The tool result of a save: the bill's totals, ``replaced`` and the totals before."""
        data = self.bill.to_json()
        out: dict[str, Any] = {
            "bill_id": self.bill.id,
            "date": self.bill.date,
            "revision": self.bill.revision,
            "items": data["items"],
            "cost": data["cost"],
            "revenue": data["revenue"],
            "profit": data["profit"],
            "replaced": self.before is not None,
        }
        if self.before is not None:
            out["before"] = {
                "revision": self.before.revision,
                "cost": format_money(self.before.cost),
                "revenue": format_money(self.before.revenue),
                "profit": format_money(self.before.profit),
            }
        return out

    def notice(self, lang: str) -> str | None:
        """The line a reply starts with when earlier items were replaced."""
        b = self.before
        if b is None:
            return None
        bill = self.bill
        if lang == "zh":
            return (
                f"{bill.date} 已有账单 #{bill.id}，本次替换了它的项目（之前：成本 "
                f"{format_money(b.cost)}，收入 {format_money(b.revenue)}，利润 "
                f"{format_money(b.profit)}）。发送 /undo 可恢复。"
            )
        return (
            f"Bill #{bill.id} for {bill.date} already existed; its items were replaced (before: "
            f"cost {format_money(b.cost)}, revenue {format_money(b.revenue)}, profit "
            f"{format_money(b.profit)}). Send /undo to bring them back."
        )


async def saved(ledger: Ledger, bill: Bill) -> Saved:
    """What a save did: revision 1 is a new bill, a later one replaced the revision before."""
    if bill.revision <= 1:
        return Saved(bill)
    revisions = await ledger.revisions(bill.id)
    before = next((r for r in revisions if r.revision == bill.revision - 1), None)
    return Saved(bill, before)


async def save_file(
    ledger: Ledger,
    thread_id: str,
    path: Path,
    name: str,
    *,
    default_date: str,
    only: str | None = None,
    currency: str | None = None,
    note: str | None = None,
    reason: str = "save",
    run_id: str | None = None,
    call_id: str | None = None,
    actor: Actor | None = None,
) -> tuple[SalesDays, list[Saved]]:
    """Save one bill per day of the sales file at ``path``; totals are computed in code."""
    days = read_sales_days(path, name, default_date, only)
    await ledger.learn_prices(thread_id, [i for d in days.days.values() for i in d], source=name)
    results: list[Saved] = []
    for day, items in days.days.items():
        key = call_id
        if call_id and len(days.days) > 1:
            key = f"{call_id[:_CALL_ID_ROOM]}#{day}"  # one revision per day, still replay-safe
        bill = await ledger.save(
            thread_id,
            day,
            items,
            currency=currency,
            note=note,
            run_id=run_id,
            call_id=key,
            reason=reason,
            actor=actor,
        )
        results.append(await saved(ledger, bill))
    return days, results
