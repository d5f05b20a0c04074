"""The bill ledger: Decimal money, append-only revisions, and a per-thread price catalog.

Rules this module enforces (see DESIGN.md, "Rules that hold everywhere"):

- Money and quantities are :class:`decimal.Decimal`. Numbers arrive as ``str``/``int``/``float``
  and are converted through ``str`` so ``0.1`` stays ``0.1``; NaN, infinities and booleans are
  rejected.
- Totals are recomputed from the line items. A line's ``cost``/``revenue`` is
  ``quantity * unit`` rounded half-up to cents (0.01); bill totals are exact sums of those line
  amounts, so a printed table always adds up. Unit prices are never rounded.
- A change to a bill is a new ``bill_revisions`` row; old rows are never updated. ``undo`` is a
  new revision too (reason ``"undo"``); undoing revision 1 voids the bill.
- A write carrying ``(run_id, call_id)`` is idempotent: a replayed tool call returns the
  revision the first call wrote instead of writing another one.
- Names are compared after :func:`normalize_name`; a missing price is filled from the bill itself
  or the thread's catalog, and an unknown one raises :class:`~core.errors.UnknownPrice`.

Text formats (``Bill.to_json``): money as decimal strings with at least two places (``"12.50"``,
more only when a unit price has them, e.g. ``"0.125"``); quantities as plain decimals without
trailing zeros (``"2"``, ``"1.5"``); timestamps ISO 8601 UTC with a ``Z`` suffix.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as _date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import CommandError, NotFound, ToolError, UnknownPrice
from core.store.tables import bill_revisions, bills, price_catalog, threads

if TYPE_CHECKING:
    from core.config import Settings
    from core.store import Store

__all__ = [
    "Bill",
    "Ledger",
    "LineItem",
    "export_bills",
    "format_money",
    "format_quantity",
    "normalize_name",
    "parse_add",
    "to_decimal",
]

CENT = Decimal("0.01")
# Bounds keep every product and sum far inside the 60-digit context used below, and stop a
# model from storing absurd values ("1e999") that would break exports.
MAX_QUANTITY = Decimal("1000000000")
MAX_UNIT = Decimal("1000000000000")
MAX_PLACES = 6
MAX_ITEMS = 500
MAX_NAME = 200
MAX_NOTE = 2000
_PRECISION = 60
_WRITE_ATTEMPTS = 5
UNDO = "undo"

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
# Invisible characters that ride along from copy-paste and CSV BOMs; they would split one item
# into two visually identical ones.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u2060\u00ad"), None)


# --- names and numbers ---------------------------------------------------------------------


def _clean_name(raw: str) -> str:
    """Display form of a name: NFKC, invisible characters dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE)
    return " ".join(text.split())


def normalize_name(s: str) -> str:
    """The comparison key of an item name.

    NFKC folds full-width letters and digits (``"Ｒｏｓｅ２"`` → ``"rose2"``), whitespace is
    trimmed and collapsed, and the result is casefolded (a no-op for Chinese), so
    ``"向日葵"``, ``" 向日葵 "`` and ``"Sunflower"``/``"sunflower"`` each name one item.
    """
    return _clean_name(s).casefold()


def _fail(message: str, zh: str, code: str = "invalid_item") -> ToolError:
    return ToolError(message, code=code, zh=zh)


def to_decimal(value: Any, what: str = "value") -> Decimal:
    """Convert a number from a model, a CSV or a person to a finite ``Decimal``.

    Floats go through ``str`` (``0.1`` → ``Decimal("0.1")``, not its binary expansion).
    Raises :class:`ToolError` for booleans, NaN, infinities and non-numeric text.
    """
    if isinstance(value, bool):  # bool is an int subclass; "true" is not a quantity
        raise _fail(f"{what} must be a number, got {value!r}", f"{what} 必须是数字，收到 {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if not text or len(text) > 50:
            raise _fail(
                f"{what} must be a number, got {value!r}", f"{what} 必须是数字，收到 {value!r}"
            )
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise _fail(
                f"{what} must be a number, got {value!r}", f"{what} 必须是数字，收到 {value!r}"
            ) from None
    else:
        raise _fail(f"{what} must be a number, got {value!r}", f"{what} 必须是数字，收到 {value!r}")
    if not number.is_finite():
        raise _fail(
            f"{what} must be a finite number, got {value!r}",
            f"{what} 必须是有限的数字，收到 {value!r}",
        )
    return number


def _check_places(
    number: Decimal, what: str, zh_what: str, raw: Any, code: str = "invalid_price"
) -> Decimal:
    number = number.normalize() if number else Decimal(0)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PLACES:
        raise _fail(
            f"{what} has more than {MAX_PLACES} decimal places: {raw!r}",
            f"{zh_what}的小数位超过 {MAX_PLACES} 位：{raw!r}",
            code=code,
        )
    return number


def _quantity(value: Any, name: str) -> Decimal:
    what = f"quantity of {name}"
    try:
        number = to_decimal(value, what)
    except ToolError as exc:
        raise _fail(
            f"quantity of {name} must be a positive number, got {value!r}",
            f"{name} 的数量必须是正数，收到 {value!r}",
            code="invalid_quantity",
        ) from exc
    if number <= 0 or number > MAX_QUANTITY:
        raise _fail(
            f"quantity of {name} must be a positive number up to {MAX_QUANTITY}, got {value!r}",
            f"{name} 的数量必须是不超过 {MAX_QUANTITY} 的正数，收到 {value!r}",
            code="invalid_quantity",
        )
    return _check_places(number, what, f"{name} 的数量", value, "invalid_quantity")


def _unit(value: Any, name: str, field: str) -> Decimal | None:
    """A unit cost/price, or None when absent (None or empty text) so it can be filled."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    what = f"{field} of {name}"
    number = to_decimal(value, what)
    if number < 0 or number > MAX_UNIT:
        raise _fail(
            f"{what} must be between 0 and {MAX_UNIT}, got {value!r}",
            f"{name} 的{_ZH_FIELD[field]}必须在 0 到 {MAX_UNIT} 之间，收到 {value!r}",
            code="invalid_price",
        )
    return _check_places(number, what, f"{name} 的{_ZH_FIELD[field]}", value)


_ZH_FIELD = {"unit_cost": "进价", "unit_price": "售价"}


def format_money(value: Decimal) -> str:
    """Money as text: at least two decimal places, never an exponent, never rounded."""
    number = value.normalize() if value else Decimal(0)  # also turns -0 into 0
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        number = number.quantize(CENT)
    return format(number, "f")


def format_quantity(value: Decimal) -> str:
    """Quantity as text: plain decimal without trailing zeros (``"2"``, ``"1.25"``, ``"100"``)."""
    number = value.normalize() if value else Decimal(0)
    return format(number, "f")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_date(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if _DATE_RE.match(text):
        try:
            _date.fromisoformat(text)
            return text
        except ValueError:
            pass
    raise ToolError(
        f"date must be a real calendar date as YYYY-MM-DD, got {value!r}",
        code="invalid_date",
        zh=f"日期格式应为 YYYY-MM-DD 且为有效日期，收到 {value!r}",
    )


def _check_currency(value: Any) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY_RE.match(text):
        raise ToolError(
            f"currency must be a 3-letter code such as CNY or USD, got {value!r}",
            code="invalid_currency",
            zh=f"币种应为三个字母的代码，例如 CNY 或 USD，收到 {value!r}",
        )
    return text


def _check_note(note: str | None) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str):
        raise ToolError("note must be text", code="invalid_note", zh="备注必须是文本")
    return note.strip()[:MAX_NOTE] or None


# --- value objects -------------------------------------------------------------------------


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
        with localcontext(prec=_PRECISION):
            return (self.quantity * self.unit_cost).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def revenue(self) -> Decimal:
        """``quantity * unit_price`` rounded half-up to cents."""
        with localcontext(prec=_PRECISION):
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

    def _stored(self) -> dict[str, str]:
        # Exact text in the JSON column: Decimal -> str -> Decimal round-trips on every backend.
        return {
            "name": self.name,
            "quantity": format(self.quantity, "f"),
            "unit_cost": format(self.unit_cost, "f"),
            "unit_price": format(self.unit_price, "f"),
        }

    @classmethod
    def _from_stored(cls, data: Mapping[str, Any]) -> LineItem:
        return cls(
            name=str(data["name"]),
            quantity=Decimal(str(data["quantity"])),
            unit_cost=Decimal(str(data["unit_cost"])),
            unit_price=Decimal(str(data["unit_price"])),
        )


def _totals(items: Sequence[LineItem]) -> tuple[Decimal, Decimal, Decimal]:
    with localcontext(prec=_PRECISION):
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

    def to_json(self) -> dict[str, Any]:
        """The Bill JSON object shared by tools, commands, renderers and exports."""
        return {
            "id": self.id,
            "thread": self.thread_key,
            "date": self.date,
            "currency": self.currency,
            "revision": self.revision,
            "items": [i.to_json() for i in self.items],
            "cost": format_money(self.cost),
            "revenue": format_money(self.revenue),
            "profit": format_money(self.profit),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(slots=True)
class _Draft:
    """An incoming line before prices are filled."""

    name: str
    key: str
    quantity: Decimal
    unit_cost: Decimal | None
    unit_price: Decimal | None


def _item_name(raw: Mapping[str, Any]) -> str:
    value = raw.get("name")
    name = _clean_name(value) if isinstance(value, str) else ""
    if not name:
        raise _fail(
            f"every item needs a name, got {value!r}", f"每个项目都需要品名，收到 {value!r}"
        )
    if len(name) > MAX_NAME:
        raise _fail(
            f"item name is longer than {MAX_NAME} characters", f"品名超过 {MAX_NAME} 个字符"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise _fail(
            f"item name {name!r} contains control characters", f"品名 {name!r} 含有控制字符"
        )
    return name


def _drafts(items: Iterable[Any], what: str) -> list[_Draft]:
    """Validate and merge incoming lines by normalised name; totals sent along are ignored."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise _fail(f"{what} must be a list of items", f"{what} 必须是项目列表")
    merged: dict[str, _Draft] = {}
    for raw in items:
        if not isinstance(raw, Mapping):
            raise _fail(
                f"each of {what} must be an object, got {raw!r}", f"{what} 的每项必须是对象"
            )
        name = _item_name(raw)
        key = normalize_name(name)
        draft = _Draft(
            name=name,
            key=key,
            quantity=_quantity(raw.get("quantity"), name),
            unit_cost=_unit(raw.get("unit_cost"), name, "unit_cost"),
            unit_price=_unit(raw.get("unit_price"), name, "unit_price"),
        )
        seen = merged.get(key)
        if seen is None:
            merged[key] = draft
            continue
        for field in ("unit_cost", "unit_price"):
            old, new = getattr(seen, field), getattr(draft, field)
            if old is not None and new is not None and old != new:
                raise _fail(
                    f"{name} appears twice with different {field.replace('_', ' ')}s "
                    f"({format_money(old)} and {format_money(new)}); send one price per item",
                    f"{name} 出现了两次且{_ZH_FIELD[field]}不同（{format_money(old)} 和 "
                    f"{format_money(new)}），每个品名只能有一个价格",
                    code="conflicting_prices",
                )
            if old is None:
                setattr(seen, field, new)
        with localcontext(prec=_PRECISION):
            seen.quantity = seen.quantity + draft.quantity
        if seen.quantity > MAX_QUANTITY:
            raise _fail(
                f"quantity of {name} exceeds {MAX_QUANTITY}",
                f"{name} 的数量超过 {MAX_QUANTITY}",
                code="invalid_quantity",
            )
    if len(merged) > MAX_ITEMS:
        raise _fail(f"at most {MAX_ITEMS} items per call", f"每次最多 {MAX_ITEMS} 个项目")
    return list(merged.values())


Prices = dict[str, tuple[Decimal | None, Decimal | None]]


def _fill(drafts: Sequence[_Draft], sources: Sequence[Prices]) -> list[LineItem]:
    """Fill missing unit prices from ``sources`` in order; unknown ones raise UnknownPrice."""
    lines: list[LineItem] = []
    unknown: list[str] = []
    for d in drafts:
        cost, price = d.unit_cost, d.unit_price
        for source in sources:
            known = source.get(d.key)
            if known is None:
                continue
            cost = cost if cost is not None else known[0]
            price = price if price is not None else known[1]
        if cost is None or price is None:
            unknown.append(d.name)
            continue
        lines.append(LineItem(d.name, d.quantity, cost, price))
    if unknown:
        names = ", ".join(unknown)
        raise UnknownPrice(
            f"no known price for {names}; ask the user",
            zh=f"不知道 {'、'.join(unknown)} 的价格（进价和售价），请向用户询问",
        )
    return lines


def _prices_of(items: Iterable[LineItem]) -> Prices:
    return {i.key: (i.unit_cost, i.unit_price) for i in items}


# --- the ledger ----------------------------------------------------------------------------


class Ledger:
    """Bills of every thread, on the store's engine (SQLite or PostgreSQL).

    Every write runs in one transaction and appends one ``bill_revisions`` row. Concurrent
    writers racing for the same revision number are retried; a replayed ``(run_id, call_id)``
    returns the revision it wrote the first time.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    @property
    def _engine(self) -> Any:
        return self._store.engine

    # --- writes ----------------------------------------------------------------------------

    async def save(
        self,
        thread_id: str,
        date: str,
        items: list[dict[str, Any]],
        *,
        currency: str | None = None,
        note: str | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
        reason: str = "save",
    ) -> Bill:
        """Create a bill (revision 1) and make it the thread's current bill.

        Missing unit prices are filled from the thread's catalog, then from the current bill.
        Raises ToolError (bad input), UnknownPrice, NotFound (no such thread).
        """
        day = _check_date(date)
        money = _check_currency(currency or self._settings.currency)
        note = _check_note(note)
        _check_reason(reason)
        drafts = _drafts(items, "items")
        if not drafts:
            raise _fail("a bill needs at least one item", "账单至少需要一个项目")

        async def work(conn: AsyncConnection) -> tuple[int, int]:
            thread = await _thread_row(conn, thread_id)
            current = await _latest_items(conn, thread.current_bill_id)
            lines = _fill(drafts, [await _catalog(conn, thread_id), _prices_of(current)])
            now = datetime.now(UTC)
            result = await conn.execute(
                bills.insert().values(
                    thread_id=thread_id,
                    date=day,
                    currency=money,
                    revision=1,
                    voided=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            key = result.inserted_primary_key
            assert key is not None  # a single-row INSERT always reports its primary key
            bill_id = int(key[0])
            await _insert_revision(
                conn, bill_id, 1, lines, False, reason, note, run_id, call_id, now
            )
            await _learn(conn, thread_id, _prices_of(lines), f"bill #{bill_id}", now)
            await _set_current(conn, thread_id, bill_id, now)
            return bill_id, 1

        return await self._write(work, run_id, call_id)

    async def amend(
        self,
        thread_id: str,
        bill_id: int | None = None,
        *,
        add: Iterable[dict[str, Any]] = (),
        remove: Iterable[dict[str, Any]] = (),
        note: str | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
        reason: str = "amend",
    ) -> Bill:
        """Write a new revision of a bill (default: the thread's current bill).

        ``remove`` is applied first (a line with ``quantity`` is reduced, without it is dropped),
        then ``add`` merges quantities into lines of the same normalised name or appends new
        lines. Removing then re-adding an item in one call is how its price changes. Missing
        prices come from the bill's own lines, then the catalog.
        """
        note = _check_note(note)
        _check_reason(reason)
        adds = _drafts(add, "add")
        removes = _removals(remove)
        if not adds and not removes:
            raise _fail(
                "nothing to change: give items to add or remove",
                "没有要修改的内容：请提供要添加或删除的项目",
            )

        async def work(conn: AsyncConnection) -> tuple[int, int]:
            row = await _bill_for_write(conn, thread_id, bill_id)
            if row.voided:
                raise ToolError(
                    f"bill #{row.id} was voided; save a new bill instead",
                    code="bill_voided",
                    zh=f"账单 #{row.id} 已作废，请保存一份新账单",
                )
            before = await _latest_items(conn, row.id)
            lines = {i.key: LineItem(i.name, i.quantity, i.unit_cost, i.unit_price) for i in before}
            _apply_removals(lines, removes, row.id)
            catalog = await _catalog(conn, thread_id)
            own = _prices_of(before)
            for d in adds:
                line = lines.get(d.key)
                if line is None:
                    lines[d.key] = _fill([d], [own, catalog])[0]
                    continue
                _check_same_price(line, d)
                with localcontext(prec=_PRECISION):
                    line.quantity = line.quantity + d.quantity
                if line.quantity > MAX_QUANTITY:
                    raise _fail(
                        f"quantity of {line.name} exceeds {MAX_QUANTITY}",
                        f"{line.name} 的数量超过 {MAX_QUANTITY}",
                        code="invalid_quantity",
                    )
            items = list(lines.values())
            revision = row.revision + 1
            now = datetime.now(UTC)
            await _insert_revision(
                conn, row.id, revision, items, False, reason, note, run_id, call_id, now
            )
            await _bump(conn, row.id, revision, False, now)
            await _learn(conn, thread_id, _prices_of(items), f"bill #{row.id}", now)
            await _set_current(conn, thread_id, row.id, now)
            return row.id, revision

        return await self._write(work, run_id, call_id)

    async def undo(self, thread_id: str, bill_id: int | None = None) -> Bill:
        """Undo the last change of a bill (default: the thread's current bill) as a new revision.

        Revisions form a stack: every non-undo revision pushes a state, every undo pops one, so
        repeated undos walk back through history. Undoing the first state voids the bill (a
        revision with no items and ``voided=True``) and clears it as the thread's current bill.
        Raises CommandError when there is nothing to undo.
        """

        async def work(conn: AsyncConnection) -> tuple[int, int]:
            try:
                row = await _bill_for_write(conn, thread_id, bill_id)
            except NotFound:
                if bill_id is None:
                    raise _nothing_to_undo() from None
                raise
            revs = (
                await conn.execute(
                    sa.select(
                        bill_revisions.c.revision,
                        bill_revisions.c.reason,
                        bill_revisions.c["items"],
                    )
                    .where(bill_revisions.c.bill_id == row.id)
                    .order_by(bill_revisions.c.revision)
                )
            ).all()
            stack: list[Any] = []
            for rev in revs:
                if rev.reason == UNDO:
                    if stack:
                        stack.pop()
                else:
                    stack.append(rev)
            if row.voided or not stack:
                raise _nothing_to_undo()
            voided = len(stack) == 1
            items = [] if voided else [LineItem._from_stored(i) for i in stack[-2].items]
            revision = row.revision + 1
            now = datetime.now(UTC)
            await _insert_revision(
                conn, row.id, revision, items, voided, UNDO, None, None, None, now
            )
            await _bump(conn, row.id, revision, voided, now)
            if voided:
                await conn.execute(
                    threads.update()
                    .where(threads.c.id == thread_id, threads.c.current_bill_id == row.id)
                    .values(current_bill_id=None, updated_at=now)
                )
            else:
                await _set_current(conn, thread_id, row.id, now)
            return row.id, revision

        return await self._write(work, None, None)

    async def _write(
        self,
        work: Any,
        run_id: str | None,
        call_id: str | None,
    ) -> Bill:
        """Run ``work(conn) -> (bill_id, revision)`` in a transaction, idempotently, with retry."""
        keyed = bool(run_id and call_id)
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                async with self._engine.begin() as conn:
                    if keyed:
                        found = await _revision_for_call(conn, run_id, call_id)
                        if found is not None:
                            return await _snapshot(conn, *found)
                    bill_id, revision = await work(conn)
                    return await _snapshot(conn, bill_id, revision)
            except IntegrityError as exc:
                # Either a replay of the same call won the race (return its result), or another
                # writer took this revision number (recompute on top of it).
                if keyed:
                    async with self._engine.connect() as conn:
                        found = await _revision_for_call(conn, run_id, call_id)
                        if found is not None:
                            return await _snapshot(conn, *found)
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise ToolError(
                        "the bill was changed by someone else at the same time; try again",
                        code="write_conflict",
                        zh="账单正被同时修改，请重试",
                    ) from exc
        raise AssertionError("unreachable")

    # --- price catalog ---------------------------------------------------------------------

    async def learn_prices(
        self, thread_id: str, items: Iterable[Mapping[str, Any] | LineItem], source: str
    ) -> int:
        """Remember unit cost/price per normalised name for this thread; returns entries learnt.

        Meant for sales files as well as bills, so it is lenient: an entry whose price is
        missing, non-numeric, negative or NaN is skipped for that field (the other field is
        still learnt), and an unnamed row is skipped. A known field is never erased by a
        missing one.
        """
        prices: Prices = {}
        for raw in items:
            if isinstance(raw, LineItem):
                data: Mapping[str, Any] = {
                    "name": raw.name,
                    "unit_cost": raw.unit_cost,
                    "unit_price": raw.unit_price,
                }
            elif isinstance(raw, Mapping):
                data = raw
            else:
                continue
            name = data.get("name")
            if not isinstance(name, str) or not _clean_name(name):
                continue
            cost = _lenient_unit(data.get("unit_cost"))
            price = _lenient_unit(data.get("unit_price"))
            if cost is None and price is None:
                continue
            key = normalize_name(name)[:MAX_NAME]
            old = prices.get(key, (None, None))
            # Later rows win, like a later file would: the newest price is the likeliest.
            prices[key] = (
                cost if cost is not None else old[0],
                price if price is not None else old[1],
            )
        if not prices:
            return 0
        async with self._engine.begin() as conn:
            await _thread_row(conn, thread_id)
            await _learn(conn, thread_id, prices, source[:200] or "unknown", datetime.now(UTC))
        return len(prices)

    async def catalog(self, thread_id: str) -> Prices:
        """``{normalised name: (unit_cost, unit_price)}`` known for this thread."""
        async with self._engine.connect() as conn:
            return await _catalog(conn, thread_id)

    # --- reads -----------------------------------------------------------------------------

    async def get(self, bill_id: int, *, thread_id: str | None = None) -> Bill:
        """A bill at its latest revision; with ``thread_id``, only that thread's bill."""
        async with self._engine.connect() as conn:
            q = sa.select(bills.c.revision).where(bills.c.id == bill_id)
            if thread_id is not None:
                q = q.where(bills.c.thread_id == thread_id)
            revision = (await conn.execute(q)).scalar()
            if revision is None:
                raise _not_found(bill_id)
            return await _snapshot(conn, bill_id, revision)

    async def current(self, thread_id: str) -> Bill | None:
        """The thread's current bill (the last one saved or amended), None if none or voided."""
        async with self._engine.connect() as conn:
            bill_id = (
                await conn.execute(
                    sa.select(threads.c.current_bill_id).where(threads.c.id == thread_id)
                )
            ).scalar()
            if bill_id is None:
                return None
            row = (
                await conn.execute(
                    sa.select(bills.c.revision, bills.c.voided).where(
                        bills.c.id == bill_id, bills.c.thread_id == thread_id
                    )
                )
            ).first()
            if row is None or row.voided:
                return None
            return await _snapshot(conn, bill_id, row.revision)

    async def history(self, bill_id: int) -> list[dict[str, Any]]:
        """Every revision of a bill, oldest first, as JSON-ready dicts."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(bill_revisions)
                    .where(bill_revisions.c.bill_id == bill_id)
                    .order_by(bill_revisions.c.revision)
                )
            ).all()
        if not rows:
            raise _not_found(bill_id)
        out = []
        for r in rows:
            items = [LineItem._from_stored(i) for i in r.items]
            out.append(
                {
                    "revision": r.revision,
                    "reason": r.reason,
                    "note": r.note,
                    "voided": bool(r.voided),
                    "items": [i.to_json() for i in items],
                    "cost": format_money(r.cost),
                    "revenue": format_money(r.revenue),
                    "profit": format_money(r.profit),
                    "run_id": r.run_id,
                    "call_id": r.tool_call_id,
                    "created_at": _iso(r.created_at),
                }
            )
        return out

    async def list(
        self,
        *,
        thread_id: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        include_voided: bool = False,
    ) -> list[Bill]:
        """Bills at their latest revision, ordered by date then id; dates are inclusive."""
        q = _snapshot_query().join(
            bill_revisions,
            sa.and_(
                bill_revisions.c.bill_id == bills.c.id,
                bill_revisions.c.revision == bills.c.revision,
            ),
        )
        if thread_id is not None:
            q = q.where(bills.c.thread_id == thread_id)
        if date_from is not None:
            q = q.where(bills.c.date >= _check_date(date_from))
        if date_to is not None:
            q = q.where(bills.c.date <= _check_date(date_to))
        if not include_voided:
            q = q.where(bills.c.voided.is_(False))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q.order_by(bills.c.date, bills.c.id))).all()
        return [_bill_from_row(r) for r in rows]


# --- SQL helpers (module level so the class stays about behaviour) -------------------------


def _check_reason(reason: str) -> None:
    # "undo" rows are stack pops for undo(); letting a save/amend claim it would corrupt that.
    if reason == UNDO or not reason or len(reason) > 40:
        raise ValueError(f"reason must be a short label other than {UNDO!r}, got {reason!r}")


def _nothing_to_undo() -> CommandError:
    return CommandError("Nothing to undo.", code="nothing_to_undo", zh="没有可以撤销的修改。")


def _not_found(bill_id: int | None) -> NotFound:
    if bill_id is None:
        return NotFound(
            "there is no bill in this conversation yet; save one first",
            zh="本对话还没有账单，请先保存一份账单",
        )
    return NotFound(f"no bill #{bill_id} in this conversation", zh=f"本对话中没有账单 #{bill_id}")


def _lenient_unit(value: Any) -> Decimal | None:
    try:
        number = _unit(value, "item", "unit_price")
    except ToolError:
        return None
    return number


def _removals(remove: Iterable[Any]) -> list[tuple[str, str, Decimal | None]]:
    if isinstance(remove, (str, bytes, Mapping)) or not isinstance(remove, Iterable):
        raise _fail("remove must be a list of items", "remove 必须是项目列表")
    out = []
    for raw in remove:
        if not isinstance(raw, Mapping):
            raise _fail(f"each of remove must be an object, got {raw!r}", "remove 的每项必须是对象")
        name = _item_name(raw)
        qty = raw.get("quantity")
        out.append((name, normalize_name(name), None if qty is None else _quantity(qty, name)))
    return out


def _apply_removals(
    lines: dict[str, LineItem], removes: Sequence[tuple[str, str, Decimal | None]], bill_id: int
) -> None:
    for name, key, qty in removes:
        line = lines.get(key)
        if line is None:
            raise _fail(
                f"{name} is not on bill #{bill_id}",
                f"账单 #{bill_id} 中没有 {name}",
                code="not_on_bill",
            )
        if qty is None or qty == line.quantity:
            del lines[key]
        elif qty > line.quantity:
            raise _fail(
                f"cannot remove {format_quantity(qty)} {name}: bill #{bill_id} has only "
                f"{format_quantity(line.quantity)}",
                f"无法删除 {format_quantity(qty)} 个{name}：账单 #{bill_id} 中只有 "
                f"{format_quantity(line.quantity)} 个",
                code="remove_too_many",
            )
        else:
            with localcontext(prec=_PRECISION):
                line.quantity = line.quantity - qty


def _check_same_price(line: LineItem, draft: _Draft) -> None:
    """Adding to an existing line must not silently reprice what was already recorded."""
    for field in ("unit_cost", "unit_price"):
        given = getattr(draft, field)
        have = getattr(line, field)
        if given is not None and given != have:
            raise _fail(
                f"{line.name} is on the bill with {field.replace('_', ' ')} {format_money(have)}, "
                f"not {format_money(given)}; to change the price, remove the line and add it "
                "again with the new price",
                f"{line.name} 在账单中的{_ZH_FIELD[field]}是 {format_money(have)}，不是 "
                f"{format_money(given)}；如需改价，请先删除该项再按新价格添加",
                code="conflicting_prices",
            )


async def _thread_row(conn: AsyncConnection, thread_id: str) -> Any:
    row = (
        await conn.execute(
            sa.select(threads.c.id, threads.c.key, threads.c.current_bill_id).where(
                threads.c.id == thread_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no thread {thread_id}", zh=f"没有对话 {thread_id}")
    return row


async def _bill_for_write(conn: AsyncConnection, thread_id: str, bill_id: int | None) -> Any:
    if bill_id is None:
        bill_id = (await _thread_row(conn, thread_id)).current_bill_id
        if bill_id is None:
            raise _not_found(None)
    # FOR UPDATE serialises writers of one bill on PostgreSQL; SQLite locks the whole file.
    row = (
        await conn.execute(
            sa.select(bills.c.id, bills.c.revision, bills.c.voided)
            .where(bills.c.id == bill_id, bills.c.thread_id == thread_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise _not_found(bill_id)
    return row


async def _latest_items(conn: AsyncConnection, bill_id: int | None) -> list[LineItem]:
    if bill_id is None:
        return []
    data = (
        await conn.execute(
            sa.select(bill_revisions.c["items"])
            .select_from(
                bill_revisions.join(
                    bills,
                    sa.and_(
                        bills.c.id == bill_revisions.c.bill_id,
                        bills.c.revision == bill_revisions.c.revision,
                    ),
                )
            )
            .where(bills.c.id == bill_id)
        )
    ).scalar()
    return [LineItem._from_stored(i) for i in data or []]


async def _insert_revision(
    conn: AsyncConnection,
    bill_id: int,
    revision: int,
    items: Sequence[LineItem],
    voided: bool,
    reason: str,
    note: str | None,
    run_id: str | None,
    call_id: str | None,
    now: datetime,
) -> None:
    cost, revenue, profit = _totals(items)
    await conn.execute(
        bill_revisions.insert().values(
            bill_id=bill_id,
            revision=revision,
            items=[i._stored() for i in items],
            cost=cost,
            revenue=revenue,
            profit=profit,
            voided=voided,
            reason=reason,
            note=note,
            run_id=run_id if run_id and call_id else None,
            tool_call_id=call_id if run_id and call_id else None,
            created_at=now,
        )
    )


async def _bump(
    conn: AsyncConnection, bill_id: int, revision: int, voided: bool, now: datetime
) -> None:
    await conn.execute(
        bills.update()
        .where(bills.c.id == bill_id)
        .values(revision=revision, voided=voided, updated_at=now)
    )


async def _set_current(conn: AsyncConnection, thread_id: str, bill_id: int, now: datetime) -> None:
    await conn.execute(
        threads.update()
        .where(threads.c.id == thread_id)
        .values(current_bill_id=bill_id, updated_at=now)
    )


async def _revision_for_call(
    conn: AsyncConnection, run_id: str | None, call_id: str | None
) -> tuple[int, int] | None:
    row = (
        await conn.execute(
            sa.select(bill_revisions.c.bill_id, bill_revisions.c.revision).where(
                bill_revisions.c.run_id == run_id, bill_revisions.c.tool_call_id == call_id
            )
        )
    ).first()
    return None if row is None else (row.bill_id, row.revision)


def _snapshot_query() -> sa.Select[Any]:
    return sa.select(
        bills.c.id,
        bills.c.thread_id,
        threads.c.key.label("thread_key"),
        bills.c.date,
        bills.c.currency,
        bills.c.created_at,
        bill_revisions.c.revision,
        bill_revisions.c["items"],
        bill_revisions.c.voided,
        bill_revisions.c.created_at.label("revised_at"),
    ).select_from(bills.join(threads, threads.c.id == bills.c.thread_id))


def _bill_from_row(row: Any) -> Bill:
    items = [LineItem._from_stored(i) for i in row.items]
    # Recomputed, not read from the stored totals: the items are the source of truth.
    cost, revenue, profit = _totals(items)
    return Bill(
        id=row.id,
        thread_id=row.thread_id,
        thread_key=row.thread_key,
        date=row.date,
        currency=row.currency,
        revision=row.revision,
        items=items,
        cost=cost,
        revenue=revenue,
        profit=profit,
        voided=bool(row.voided),
        created_at=row.created_at,
        updated_at=row.revised_at,
    )


async def _snapshot(conn: AsyncConnection, bill_id: int, revision: int) -> Bill:
    row = (
        await conn.execute(
            _snapshot_query()
            .join(bill_revisions, bill_revisions.c.bill_id == bills.c.id)
            .where(bills.c.id == bill_id, bill_revisions.c.revision == revision)
        )
    ).first()
    if row is None:
        raise _not_found(bill_id)
    return _bill_from_row(row)


async def _catalog(conn: AsyncConnection, thread_id: str) -> Prices:
    rows = (
        await conn.execute(
            sa.select(
                price_catalog.c.name, price_catalog.c.unit_cost, price_catalog.c.unit_price
            ).where(price_catalog.c.thread_id == thread_id)
        )
    ).all()
    return {r.name: (r.unit_cost, r.unit_price) for r in rows}


async def _learn(
    conn: AsyncConnection, thread_id: str, prices: Prices, source: str, now: datetime
) -> None:
    """Upsert catalog rows; a None field keeps the value already known."""
    rows = [
        {
            "thread_id": thread_id,
            "name": key,
            "unit_cost": cost,
            "unit_price": price,
            "source": source,
            "updated_at": now,
        }
        for key, (cost, price) in prices.items()
        if cost is not None or price is not None
    ]
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        from sqlalchemy.dialects import postgresql, sqlite

        # Both dialects spell the upsert the same way (ON CONFLICT ... DO UPDATE).
        insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = insert(price_catalog).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[price_catalog.c.thread_id, price_catalog.c.name],
            set_={
                "unit_cost": sa.func.coalesce(stmt.excluded.unit_cost, price_catalog.c.unit_cost),
                "unit_price": sa.func.coalesce(
                    stmt.excluded.unit_price, price_catalog.c.unit_price
                ),
                "source": stmt.excluded.source,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        await conn.execute(stmt)
        return
    for row in rows:  # other backends: plain read-then-write inside the caller's transaction
        known = (
            await conn.execute(
                sa.select(price_catalog.c.unit_cost, price_catalog.c.unit_price).where(
                    price_catalog.c.thread_id == thread_id, price_catalog.c.name == row["name"]
                )
            )
        ).first()
        if known is None:
            await conn.execute(price_catalog.insert().values(**row))
            continue
        await conn.execute(
            price_catalog.update()
            .where(price_catalog.c.thread_id == thread_id, price_catalog.c.name == row["name"])
            .values(
                unit_cost=row["unit_cost"] if row["unit_cost"] is not None else known.unit_cost,
                unit_price=row["unit_price"] if row["unit_price"] is not None else known.unit_price,
                source=source,
                updated_at=now,
            )
        )


# --- /add parsing --------------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
# Counting words that may follow a number directly ("2支向日葵", "3盆绿萝").
_CJK_UNIT = r"(?:支|枝|朵|束|株|棵|盆|把|扎|个|只|件|份|箱|盒|包|瓶|斤|公斤|千克)"
_LATIN_UNIT = r"(?:x|×|\*|pcs?|stems?|kg)"
_PRICE_RE = re.compile(
    rf"""(?:
        \s*(?:@|单价|each|at\s|每{_CJK_UNIT}?)\s*[¥$]?\s*(?P<a>{_NUM})\s*(?:元|块)?
      | \s*[¥$]\s*(?P<b>{_NUM})
      | (?<![\d.])\s*(?P<c>{_NUM})\s*(?:元|块|yuan|rmb)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_LEAD_RE = re.compile(
    rf"^(?P<q>{_NUM})(?:{_CJK_UNIT}|\s*{_LATIN_UNIT}(?=\s|$))?\s*(?P<name>.+)$", re.IGNORECASE
)
_TRAIL_RE = re.compile(
    rf"^(?P<name>.+?)\s*(?:x|×|\*)?\s*(?P<q>{_NUM})\s*(?:{_CJK_UNIT}|{_LATIN_UNIT})?\s*$",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"[,、;\n]+")
_ADD_USAGE_EN = (
    "Use: /add 2 向日葵, 3 玫瑰 @15 — quantity and name (either order, e.g. 2支向日葵 or "
    "向日葵 2), items separated by commas, an optional unit price after @ or before 元."
)
_ADD_USAGE_ZH = (
    "格式：/add 2 向日葵, 3 玫瑰 @15 —— 数量和品名（顺序不限，如 2支向日葵 或 向日葵 2），"
    "多个项目用逗号、顿号或分号分隔，单价可选，写在 @ 之后或“元”之前。"
)


def _add_error(segment: str, why_en: str, why_zh: str) -> CommandError:
    return CommandError(
        f"Could not read {segment!r}: {why_en}. {_ADD_USAGE_EN}",
        code="bad_add",
        zh=f"无法识别“{segment}”：{why_zh}。{_ADD_USAGE_ZH}",
    )


def parse_add(text: str) -> list[dict[str, str]]:
    """Parse the ``/add`` command's argument into ledger items.

    Accepts ``"2 向日葵"``, ``"向日葵 2"``, ``"2支向日葵"``, ``"2 sunflower"``, several items
    separated by ``,`` ``，`` ``、`` ``;`` ``；`` and an optional unit price (``"@15"``,
    ``"15元"``, ``"¥15"``, ``"每支15元"``). Returns ``[{"name", "quantity"[, "unit_price"]}]``
    with numbers as exact decimal strings. Raises CommandError (en + zh) with the expected form.
    """
    folded = unicodedata.normalize("NFKC", text or "")  # full-width digits, ，；＠￥ fold
    segments = [s.strip() for s in _SPLIT_RE.split(folded) if s.strip()]
    if not segments:
        raise CommandError(
            f"Nothing to add. {_ADD_USAGE_EN}",
            code="bad_add",
            zh=f"没有要添加的内容。{_ADD_USAGE_ZH}",
        )
    items: list[dict[str, str]] = []
    for segment in segments:
        body, price = segment, None
        m = _PRICE_RE.search(segment)
        if m and m.start() > 0:
            price = m.group("a") or m.group("b") or m.group("c")
            body = segment[: m.start()].strip()
        lead = _LEAD_RE.match(body)
        trail = None if lead else _TRAIL_RE.match(body)
        found = lead or trail
        if found is None:
            raise _add_error(segment, "no quantity found", "没有找到数量")
        name = " ".join(found.group("name").split())
        qty = found.group("q")
        if lead and re.search(rf"\s{_NUM}$", name):
            raise _add_error(
                segment,
                "two numbers; write the price after @ (2 向日葵 @15)",
                "有两个数字；单价请写在 @ 之后（2 向日葵 @15）",
            )
        if not any(ch.isalpha() for ch in name):
            raise _add_error(segment, "no item name found", "没有找到品名")
        if Decimal(qty) <= 0:
            raise _add_error(segment, "the quantity must be more than 0", "数量必须大于 0")
        item = {"name": name, "quantity": qty}
        if price is not None:
            item["unit_price"] = price
        items.append(item)
    return items


# --- export --------------------------------------------------------------------------------

ExportFormat = Literal["csv", "xlsx", "json"]
EXPORT_COLUMNS = (
    "bill_id",
    "date",
    "currency",
    "revision",
    "item",
    "quantity",
    "unit_cost",
    "unit_price",
    "cost",
    "revenue",
    "bill_cost",
    "bill_revenue",
    "bill_profit",
)
_MONEY_COLUMNS = {
    "unit_cost",
    "unit_price",
    "cost",
    "revenue",
    "bill_cost",
    "bill_revenue",
    "bill_profit",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """Neutralise spreadsheet formula injection: a leading ``= + - @ TAB CR`` gets a ``'``."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _export_rows(bill_list: Sequence[Bill]) -> list[list[Any]]:
    """One row per item; text cells made safe, numbers left as Decimal (stay numbers)."""
    rows: list[list[Any]] = []
    for b in bill_list:
        head = [b.id, safe_cell(b.date), safe_cell(b.currency), b.revision]
        tail = [b.cost, b.revenue, b.profit]
        if not b.items:  # a bill without items still shows up, with its zero totals
            rows.append([*head, "", None, None, None, None, None, *tail])
        for i in b.items:
            rows.append(
                [
                    *head,
                    safe_cell(i.name),
                    i.quantity,
                    i.unit_cost,
                    i.unit_price,
                    i.cost,
                    i.revenue,
                    *tail,
                ]
            )
    return rows


def _csv_value(column: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_money(value) if column in _MONEY_COLUMNS else format_quantity(value)
    return "" if value is None else value


def export_bills(bill_list: list[Bill], fmt: ExportFormat, out: Path) -> Path:
    """Write bills to ``out`` as CSV (UTF-8 with BOM), XLSX or JSON; returns the file written.

    CSV/XLSX: one row per item with the bill's id, date, currency, revision and totals. JSON: a
    list of :meth:`Bill.to_json`. When ``out`` is a directory a timestamped name is made inside.
    The file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    if fmt not in ("csv", "xlsx", "json"):
        raise ValueError(f"unknown export format {fmt!r}; use csv, xlsx or json")
    out = Path(out)
    if out.is_dir():
        out = out / f"bills-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=f".{fmt}", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "json":
            tmp.write_text(
                json.dumps([b.to_json() for b in bill_list], ensure_ascii=False, indent=2) + "\n",
                encoding="utf-8",
            )
        elif fmt == "csv":
            # utf-8-sig: the BOM makes Excel read Chinese names as UTF-8 instead of GBK.
            with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(EXPORT_COLUMNS)
                for row in _export_rows(bill_list):
                    writer.writerow(
                        [_csv_value(c, v) for c, v in zip(EXPORT_COLUMNS, row, strict=True)]
                    )
        else:
            _write_xlsx(bill_list, tmp)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _write_xlsx(bill_list: Sequence[Bill], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook()
    ws = wb.active
    ws.title = "bills"
    ws.append(list(EXPORT_COLUMNS))
    for row in _export_rows(bill_list):
        values = [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row]
        ws.append(values)
        for column, cell in zip(EXPORT_COLUMNS, ws[ws.max_row], strict=True):
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never let openpyxl read text as a formula
            elif column in _MONEY_COLUMNS and cell.value is not None:
                cell.number_format = "0.00"
    ws.freeze_panes = "A2"
    wb.save(path)
