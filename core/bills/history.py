"""A bill's history: every revision with when, who, why, and what changed in its items.

Changes compare each revision with the one before it: an item ``added`` or ``removed``, its
``quantity`` changed, or its ``price`` (unit cost or unit price) changed. An undo shows as the
changes it made, with reason ``undo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.bills.model import LineItem, Revision
from core.bills.money import format_money, format_quantity, iso


def item_changes(before: Sequence[LineItem], after: Sequence[LineItem]) -> list[dict[str, Any]]:
    """What changed from ``before`` to ``after``, item by item, in the order items appear."""
    old = {i.key: i for i in before}
    new = {i.key: i for i in after}
    out: list[dict[str, Any]] = []
    for key, line in new.items():
        was = old.get(key)
        if was is None:
            out.append({"change": "added", "name": line.name, "after": line.to_json()})
            continue
        if was.quantity != line.quantity:
            out.append({"change": "quantity", "name": line.name,
                        "before": format_quantity(was.quantity),
                        "after": format_quantity(line.quantity)})  # fmt: skip
        if (was.unit_cost, was.unit_price) != (line.unit_cost, line.unit_price):
            out.append({"change": "price", "name": line.name,
                        "before": f"{format_money(was.unit_cost)}/{format_money(was.unit_price)}",
                        "after": f"{format_money(line.unit_cost)}/{format_money(line.unit_price)}"})  # fmt: skip
    for key, line in old.items():
        if key not in new:
            out.append({"change": "removed", "name": line.name, "before": line.to_json()})
    return out


def history_json(bill_id: int, revisions: Sequence[Revision]) -> dict[str, Any]:
    """``{bill_id, revisions: [{revision, at, actor, actor_name, reason, note, voided, cost,
    revenue, profit, changes}]}`` (``tallybot bills history --json``)."""
    entries = []
    previous: Sequence[LineItem] = []
    for rev in revisions:
        entries.append(
            {
                "revision": rev.revision,
                "at": iso(rev.created_at),
                "actor": None if rev.actor is None else rev.actor.id,
                "actor_name": None if rev.actor is None else rev.actor.name,
                "reason": rev.reason,
                "note": rev.note,
                "voided": rev.voided,
                "cost": format_money(rev.cost),
                "revenue": format_money(rev.revenue),
                "profit": format_money(rev.profit),
                "changes": item_changes(previous, rev.items),
            }
        )
        previous = rev.items
    return {"bill_id": bill_id, "revisions": entries}


def _change_text(change: dict[str, Any], lang: str) -> str:
    zh = lang == "zh"
    name, kind = change["name"], change["change"]
    if kind == "added":
        a = change["after"]
        where = f"{a['quantity']} × {a['unit_cost']}/{a['unit_price']}"
        return f"+ {name} {where}" if not zh else f"+ 新增 {name} {where}"
    if kind == "removed":
        return f"- {name}" if not zh else f"- 删除 {name}"
    label = ("数量" if kind == "quantity" else "进价/售价") if zh else kind
    return f"~ {name} {label} {change['before']} → {change['after']}"


def history_text(data: dict[str, Any], lang: str) -> str:
    """``history_json`` as lines a person reads: one block per revision."""
    zh = lang == "zh"
    lines = [f"账单 #{data['bill_id']} 的修改记录" if zh else f"History of bill #{data['bill_id']}"]
    for e in data["revisions"]:
        who = e["actor"] or ("未知" if zh else "unknown")
        if e["actor_name"]:
            who = f"{e['actor_name']} ({who})"
        why = e["reason"] + (f" · {e['note']}" if e["note"] else "")
        if e["voided"]:
            why += " · 作废" if zh else " · voided"
        head = f"第 {e['revision']} 版" if zh else f"rev {e['revision']}"
        money = (
            f"成本 {e['cost']} 收入 {e['revenue']} 利润 {e['profit']}"
            if zh
            else f"cost {e['cost']} revenue {e['revenue']} profit {e['profit']}"
        )
        lines.append(f"{head} · {e['at']} · {who} · {why} · {money}")
        lines.extend(f"    {_change_text(c, lang)}" for c in e["changes"])
    return "\n".join(lines)
