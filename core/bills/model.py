"""The bill's value objects: a line item, a bill at one revision, a stored revision, totals.

Totals are recomputed from the line items. A line's ``cost``/``revenue`` is
``quantity * unit`` rounded half-up to cents (0.01); bill totals are exact sums of those line
amounts, so a printed table always adds up. Unit prices are never rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from core.bills.money import CENT, PRECISION, format_money, format_quantity, iso, normalize_name
from core.errors import NotFound

UNDO = "undo"


@dataclass(slots=True)
class LineItem:
    """One line of a bill. ``cost``/``revenue`` are derived, never stored from outside."""

    name: str
    quantity: Decimal
    unit_cost: Decimal
    unit_price: Decimal

    @property
    def key(self) -> str:
        """The normalised name lines are merged and looked up by."""
        return normalize_name(self.name)

    @property
    def cost(self) -> Decimal:
        """``quantity * unit_cost`` rounded half-up to cents."""
        with localcontext(prec=PRECISION):
            return (self.quantity * self.unit_cost).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def revenue(self) -> Decimal:
        """``quantity * unit_price`` rounded half-up to cents."""
        with localcontext(prec=PRECISION):
            return (self.quantity * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)

    def to_json(self) -> dict[str, str]:
        """Wire form: every number as a decimal string."""
        return {
            "name": self.name,
            "quantity": format_quantity(self.quantity),
            "unit_cost": format_money(self.unit_cost),
            "unit_price": format_money(self.unit_price),
            "cost": format_money(self.cost),
            "revenue": format_money(self.revenue),
        }

    def to_stored(self) -> dict[str, str]:
        """The form kept in the revision's JSON column."""
        # Exact text in the JSON column: Decimal -> str -> Decimal round-trips on every backend.
        return {
            "name": self.name,
            "quantity": format(self.quantity, "f"),
            "unit_cost": format(self.unit_cost, "f"),
            "unit_price": format(self.unit_price, "f"),
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> LineItem:
        """The inverse of :meth:`to_stored`."""
        return cls(
            name=str(data["name"]),
            quantity=Decimal(str(data["quantity"])),
            unit_cost=Decimal(str(data["unit_cost"])),
            unit_price=Decimal(str(data["unit_price"])),
        )


def totals(items: Sequence[LineItem]) -> tuple[Decimal, Decimal, Decimal]:
    """``(cost, revenue, profit)`` of some lines: exact sums of the rounded line amounts."""
    with localcontext(prec=PRECISION):
        cost = sum((i.cost for i in items), Decimal("0.00"))
        revenue = sum((i.revenue for i in items), Decimal("0.00"))
        return cost, revenue, revenue - cost


@dataclass(slots=True)
class Bill:
    """A bill as of one revision (normally its latest). Totals are sums over ``items``."""

    id: int
    thread_id: str
    thread_key: str
    date: str
    currency: str
    revision: int
    items: list[LineItem]
    cost: Decimal
    revenue: Decimal
    profit: Decimal
    voided: bool
    created_at: datetime
    updated_at: datetime
    book: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The Bill JSON object shared by tools, commands, renderers and exports."""
        return {
            "id": self.id,
            "book": self.book,
            "thread": self.thread_key,
            "date": self.date,
            "currency": self.currency,
            "revision": self.revision,
            "items": [i.to_json() for i in self.items],
            "cost": format_money(self.cost),
            "revenue": format_money(self.revenue),
            "profit": format_money(self.profit),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True, frozen=True)
class Actor:
    """Who made a change: channel-qualified id (``slack:U123``, ``telegram:42``,
    ``console:<login>``) and the display name where the platform gives one."""

    id: str
    name: str | None = None

    @property
    def label(self) -> str:
        """``Mei (slack:U123)``, or the id alone."""
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


@dataclass(slots=True, frozen=True)
class BillHead:
    """A bill's row as a writer sees it, locked for the transaction: id, revision, voided."""

    id: int
    revision: int
    voided: bool


@dataclass(slots=True)
class Revision:
    """One stored revision of a bill, with the totals as they were stored."""

    revision: int
    reason: str
    note: str | None
    voided: bool
    items: list[LineItem]
    cost: Decimal
    revenue: Decimal
    profit: Decimal
    run_id: str | None
    call_id: str | None
    created_at: datetime
    actor: Actor | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, as :meth:`core.bills.Ledger.history` returns it."""
        return {
            "actor": None if self.actor is None else self.actor.id,
            "actor_name": None if self.actor is None else self.actor.name,
            "revision": self.revision,
            "reason": self.reason,
            "note": self.note,
            "voided": self.voided,
            "items": [i.to_json() for i in self.items],
            "cost": format_money(self.cost),
            "revenue": format_money(self.revenue),
            "profit": format_money(self.profit),
            "run_id": self.run_id,
            "call_id": self.call_id,
            "created_at": iso(self.created_at),
        }


@dataclass(slots=True, frozen=True)
class Change:
    """What a write puts in its new revision: the full list of lines and whether it voids."""

    items: list[LineItem]
    voided: bool = False


def bill_not_found(bill_id: int | None) -> NotFound:
    """NotFound for a missing bill (None: the thread has no current bill)."""
    if bill_id is None:
        return NotFound(
            "there is no bill in this conversation yet; save one first",
            zh="本对话还没有账单，请先保存一份账单",
        )
    return NotFound(f"no bill #{bill_id} in this conversation", zh=f"本对话中没有账单 #{bill_id}")
