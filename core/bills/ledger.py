"""The Ledger: bill writes and reads with their rules, on the store's :class:`BillsRepo`.

A change to a bill is a new revision; old ones are never updated. ``undo`` is a new revision
too (reason ``"undo"``); undoing revision 1 voids the bill. A write carrying
``(run_id, call_id)`` is idempotent: a replayed tool call returns the revision the first call
wrote instead of writing another one. The Ledger decides what a revision holds (validation,
price filling, merging, undo's stack); the repository runs each write as one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

from core.bills.catalog import Draft, Prices, drafts, fill, item_name, lenient_prices, prices_of
from core.bills.model import UNDO, Actor, Bill, BillHead, Change, LineItem, Revision
from core.bills.money import (
    MAX_QUANTITY,
    PRECISION,
    ZH_FIELD,
    check_currency,
    check_date,
    check_note,
    format_money,
    format_quantity,
    invalid,
    normalize_name,
    parse_quantity,
)
from core.errors import CommandError, NotFound, ToolError

if TYPE_CHECKING:
    from core.config import Settings
    from core.store import Store

Removal = tuple[str, str, Decimal | None]
"""``(display name, normalised name, quantity or None for the whole line)``."""


class Ledger:
    """Bills of every thread, on the store (SQLite or PostgreSQL).

    Every write runs in one transaction and appends one ``bill_revisions`` row. Concurrent
    writers racing for the same revision number are retried; a replayed ``(run_id, call_id)``
    returns the revision it wrote the first time.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

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
        actor: Actor | None = None,
    ) -> Bill:
        """Save the day's bill of the thread's book and make it the thread's current bill.

        One bill per book, date and currency: if the book has one, its items are replaced by a
        new revision (``/undo`` brings them back); otherwise a bill at revision 1 is made.
        Missing unit prices are filled from the book's catalog, then from the current bill.
        Raises ToolError (bad input), UnknownPrice, NotFound (no such thread).
        """
        day = check_date(date)
        money = check_currency(currency or self._settings.currency)
        note = check_note(note)
        _check_reason(reason)
        new = drafts(items, "items")
        if not new:
            raise invalid("a bill needs at least one item", "账单至少需要一个项目")

        def lines(catalog: Prices, current: list[LineItem]) -> list[LineItem]:
            return fill(new, [catalog, prices_of(current)])

        return await self._store.write_day_bill(
            thread_id,
            lines,
            date=day,
            currency=money,
            reason=reason,
            note=note,
            run_id=run_id,
            call_id=call_id,
            actor=actor,
        )

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
        actor: Actor | None = None,
    ) -> Bill:
        """Write a new revision of a bill (default: the thread's current bill).

        ``remove`` is applied first (a line with ``quantity`` is reduced, without it is dropped),
        then ``add`` merges quantities into lines of the same normalised name or appends new
        lines. Removing then re-adding an item in one call is how its price changes. Missing
        prices come from the bill's own lines, then the catalog.
        """
        note = check_note(note)
        _check_reason(reason)
        adds = drafts(add, "add")
        removes = _removals(remove)
        if not adds and not removes:
            raise invalid(
                "nothing to change: give items to add or remove",
                "没有要修改的内容：请提供要添加或删除的项目",
            )

        def revise(head: BillHead, before: list[LineItem], catalog: Prices) -> list[LineItem]:
            return _amended(head, before, catalog, adds, removes)

        return await self._store.write_bill_revision(
            thread_id,
            bill_id,
            revise,
            reason=reason,
            note=note,
            run_id=run_id,
            call_id=call_id,
            actor=actor,
        )

    async def undo(
        self, thread_id: str, bill_id: int | None = None, *, actor: Actor | None = None
    ) -> Bill:
        """Undo the last change of a bill (default: the thread's current bill) as a new revision.

        Revisions form a stack: every non-undo revision pushes a state, every undo pops one, so
        repeated undos walk back through history. Undoing the first state voids the bill (a
        revision with no items and ``voided=True``) and clears it as the thread's current bill.
        Raises CommandError when there is nothing to undo.
        """
        try:
            return await self._store.write_bill_undo(thread_id, bill_id, _undone, actor)
        except NotFound:
            # Only finding the bill raises NotFound; without an id that means "no current bill".
            if bill_id is None:
                raise _nothing_to_undo() from None
            raise

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
        prices = lenient_prices(items)
        if not prices:
            return 0
        await self._store.learn_bill_prices(thread_id, prices, source[:200] or "unknown")
        return len(prices)

    async def catalog(self, thread_id: str) -> Prices:
        """``{normalised name: (unit_cost, unit_price)}`` known for this thread."""
        return await self._store.bill_catalog(thread_id)

    # --- reads -----------------------------------------------------------------------------

    async def get(
        self, bill_id: int, *, thread_id: str | None = None, book: str | None = None
    ) -> Bill:
        """A bill at its latest revision; with ``thread_id`` (or ``book``), only that book's."""
        return await self._store.get_bill(bill_id, thread_id=thread_id, book=book)

    async def current(self, thread_id: str) -> Bill | None:
        """The thread's current bill (the last one saved or amended), None if none or voided."""
        return await self._store.current_bill(thread_id)

    async def history(self, bill_id: int) -> list[dict[str, Any]]:
        """Every revision of a bill, oldest first, as JSON-ready dicts."""
        return [r.to_json() for r in await self._store.bill_history(bill_id)]

    async def revisions(self, bill_id: int, *, thread_id: str | None = None) -> list[Revision]:
        """Every revision of a bill (of the thread's book, if given), oldest first."""
        return await self._store.bill_history(bill_id, thread_id=thread_id)

    async def list(
        self,
        *,
        thread_id: str | None = None,
        book: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        include_voided: bool = False,
    ) -> list[Bill]:
        """Bills at their latest revision, ordered by date then id; dates are inclusive."""
        return await self._store.list_bills(
            thread_id=thread_id,
            book=book,
            date_from=None if date_from is None else check_date(date_from),
            date_to=None if date_to is None else check_date(date_to),
            include_voided=include_voided,
        )


# --- the rules of a change (pure: the repository calls them inside its transaction) --------


def _amended(
    head: BillHead,
    before: Sequence[LineItem],
    catalog: Prices,
    adds: Sequence[Draft],
    removes: Sequence[Removal],
) -> list[LineItem]:
    """The lines of an amended bill: removals first, then additions merged by name."""
    if head.voided:
        raise ToolError(
            f"bill #{head.id} was voided; save a new bill instead",
            code="bill_voided",
            zh=f"账单 #{head.id} 已作废，请保存一份新账单",
        )
    lines = {i.key: LineItem(i.name, i.quantity, i.unit_cost, i.unit_price) for i in before}
    _apply_removals(lines, removes, head.id)
    own = prices_of(before)
    for d in adds:
        line = lines.get(d.key)
        if line is None:
            lines[d.key] = fill([d], [own, catalog])[0]
            continue
        _check_same_price(line, d)
        with localcontext(prec=PRECISION):
            line.quantity = line.quantity + d.quantity
        if line.quantity > MAX_QUANTITY:
            raise invalid(
                f"quantity of {line.name} exceeds {MAX_QUANTITY}",
                f"{line.name} 的数量超过 {MAX_QUANTITY}",
                code="invalid_quantity",
            )
    return list(lines.values())


def _undone(head: BillHead, revisions: Sequence[Revision]) -> Change:
    """What undoing the last change leaves: the state before it, or a void for the first."""
    stack: list[Revision] = []
    for rev in revisions:
        if rev.reason == UNDO:
            if stack:
                stack.pop()
        else:
            stack.append(rev)
    if head.voided or not stack:
        raise _nothing_to_undo()
    if len(stack) == 1:
        return Change(items=[], voided=True)
    return Change(items=list(stack[-2].items))


def _check_reason(reason: str) -> None:
    # "undo" rows are stack pops for undo(); letting a save/amend claim it would corrupt that.
    if reason == UNDO or not reason or len(reason) > 40:
        raise ValueError(f"reason must be a short label other than {UNDO!r}, got {reason!r}")


def _nothing_to_undo() -> CommandError:
    return CommandError("Nothing to undo.", code="nothing_to_undo", zh="没有可以撤销的修改。")


def _removals(remove: Iterable[Any]) -> list[Removal]:
    if isinstance(remove, (str, bytes, Mapping)) or not isinstance(remove, Iterable):
        raise invalid("remove must be a list of items", "remove 必须是项目列表")
    out = []
    for raw in remove:
        if not isinstance(raw, Mapping):
            raise invalid(
                f"each of remove must be an object, got {raw!r}", "remove 的每项必须是对象"
            )
        name = item_name(raw)
        qty = raw.get("quantity")
        out.append((name, normalize_name(name), None if qty is None else parse_quantity(qty, name)))
    return out


def _apply_removals(lines: dict[str, LineItem], removes: Sequence[Removal], bill_id: int) -> None:
    for name, key, qty in removes:
        line = lines.get(key)
        if line is None:
            raise invalid(
                f"{name} is not on bill #{bill_id}",
                f"账单 #{bill_id} 中没有 {name}",
                code="not_on_bill",
            )
        if qty is None or qty == line.quantity:
            del lines[key]
        elif qty > line.quantity:
            raise invalid(
                f"cannot remove {format_quantity(qty)} {name}: bill #{bill_id} has only "
                f"{format_quantity(line.quantity)}",
                f"无法删除 {format_quantity(qty)} 个{name}：账单 #{bill_id} 中只有 "
                f"{format_quantity(line.quantity)} 个",
                code="remove_too_many",
            )
        else:
            with localcontext(prec=PRECISION):
                line.quantity = line.quantity - qty


def _check_same_price(line: LineItem, draft: Draft) -> None:
    """Adding to an existing line must not silently reprice what was already recorded."""
    for field in ("unit_cost", "unit_price"):
        given = getattr(draft, field)
        have = getattr(line, field)
        if given is not None and given != have:
            raise invalid(
                f"{line.name} is on the bill with {field.replace('_', ' ')} {format_money(have)}, "
                f"not {format_money(given)}; to change the price, remove the line and add it "
                "again with the new price",
                f"{line.name} 在账单中的{ZH_FIELD[field]}是 {format_money(have)}，不是 "
                f"{format_money(given)}；如需改价，请先删除该项再按新价格添加",
                code="conflicting_prices",
            )
