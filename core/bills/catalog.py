"""Price filling: incoming lines validated into drafts, missing prices filled from known ones.

Names are compared after :func:`~core.bills.money.normalize_name`; a missing price is filled
from the bill itself or the thread's catalog, and an unknown one raises
:class:`~core.errors.UnknownPrice`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from core.bills.model import LineItem
from core.bills.money import (
    MAX_ITEMS,
    MAX_NAME,
    MAX_QUANTITY,
    PRECISION,
    ZH_FIELD,
    clean_name,
    format_money,
    invalid,
    normalize_name,
    parse_quantity,
    parse_unit,
)
from core.errors import ToolError, UnknownPrice

Prices = dict[str, tuple[Decimal | None, Decimal | None]]
"""``{normalised name: (unit_cost, unit_price)}``; None where a price is not known."""


@dataclass(slots=True)
class Draft:
    """An incoming line before prices are filled."""

    name: str
    key: str
    quantity: Decimal
    unit_cost: Decimal | None
    unit_price: Decimal | None


def item_name(raw: Mapping[str, Any]) -> str:
    """The checked display name of an incoming line; raises ToolError when unusable."""
    value = raw.get("name")
    name = clean_name(value) if isinstance(value, str) else ""
    if not name:
        raise invalid(
            f"every item needs a name, got {value!r}", f"每个项目都需要品名，收到 {value!r}"
        )
    if len(name) > MAX_NAME:
        raise invalid(
            f"item name is longer than {MAX_NAME} characters", f"品名超过 {MAX_NAME} 个字符"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise invalid(
            f"item name {name!r} contains control characters", f"品名 {name!r} 含有控制字符"
        )
    return name


def _draft(raw: Any, what: str) -> Draft:
    if not isinstance(raw, Mapping):
        raise invalid(f"each of {what} must be an object, got {raw!r}", f"{what} 的每项必须是对象")
    name = item_name(raw)
    return Draft(
        name=name,
        key=normalize_name(name),
        quantity=parse_quantity(raw.get("quantity"), name),
        unit_cost=parse_unit(raw.get("unit_cost"), name, "unit_cost"),
        unit_price=parse_unit(raw.get("unit_price"), name, "unit_price"),
    )


def _merge(seen: Draft, draft: Draft) -> None:
    """Fold a repeated line into the first one: quantities add, prices must agree."""
    name = draft.name
    for field in ("unit_cost", "unit_price"):
        old, new = getattr(seen, field), getattr(draft, field)
        if old is not None and new is not None and old != new:
            raise invalid(
                f"{name} appears twice with different {field.replace('_', ' ')}s "
                f"({format_money(old)} and {format_money(new)}); send one price per item",
                f"{name} 出现了两次且{ZH_FIELD[field]}不同（{format_money(old)} 和 "
                f"{format_money(new)}），每个品名只能有一个价格",
                code="conflicting_prices",
            )
        if old is None:
            setattr(seen, field, new)
    with localcontext(prec=PRECISION):
        seen.quantity = seen.quantity + draft.quantity
    if seen.quantity > MAX_QUANTITY:
        raise invalid(
            f"quantity of {name} exceeds {MAX_QUANTITY}",
            f"{name} 的数量超过 {MAX_QUANTITY}",
            code="invalid_quantity",
        )


def drafts(items: Iterable[Any], what: str) -> list[Draft]:
    """Validate and merge incoming lines by normalised name; totals sent along are ignored."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise invalid(f"{what} must be a list of items", f"{what} 必须是项目列表")
    merged: dict[str, Draft] = {}
    for raw in items:
        draft = _draft(raw, what)
        seen = merged.get(draft.key)
        if seen is None:
            merged[draft.key] = draft
        else:
            _merge(seen, draft)
    if len(merged) > MAX_ITEMS:
        raise invalid(f"at most {MAX_ITEMS} items per call", f"每次最多 {MAX_ITEMS} 个项目")
    return list(merged.values())


def fill(drafts: Sequence[Draft], sources: Sequence[Prices]) -> list[LineItem]:
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


def prices_of(items: Iterable[LineItem]) -> Prices:
    """The prices some lines carry, by normalised name."""
    return {i.key: (i.unit_cost, i.unit_price) for i in items}


def _lenient_unit(value: Any) -> Decimal | None:
    try:
        number = parse_unit(value, "item", "unit_price")
    except ToolError:
        return None
    return number


def lenient_prices(items: Iterable[Mapping[str, Any] | LineItem]) -> Prices:
    """Prices to learn from rows of a sales file or from bill lines, skipping what is unusable.

    An entry whose price is missing, non-numeric, negative or NaN is skipped for that field
    (the other field is still kept), and an unnamed row is skipped.
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
        if not isinstance(name, str) or not clean_name(name):
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
    return prices
