"""Plain-text formatting shared by commands and channels (a bill as a monospace table)."""

from __future__ import annotations

from typing import Any


def bill_table(bill: dict[str, Any], lang: str = "en") -> str:
    """A monospace table of a Bill JSON object (money as decimal strings)."""
    zh = lang == "zh"
    head = (
        ("品名", "数量", "进价", "售价", "成本", "收入")
        if zh
        else ("item", "qty", "unit cost", "unit price", "cost", "revenue")
    )
    rows = [head] + [
        (i["name"], i["quantity"], i["unit_cost"], i["unit_price"], i["cost"], i["revenue"])
        for i in bill.get("items", [])
    ]
    widths = [max(_width(str(r[c])) for r in rows) for c in range(len(head))]
    lines = ["  ".join(_pad(str(v), widths[c], right=c > 0) for c, v in enumerate(r)) for r in rows]
    total = (
        f"成本 {bill['cost']}  收入 {bill['revenue']}  利润 {bill['profit']} {bill['currency']}"
        if zh
        else f"cost {bill['cost']}  revenue {bill['revenue']}  profit {bill['profit']} {bill['currency']}"
    )
    title = (
        f"账单 #{bill['id']}（{bill['date']}，第 {bill['revision']} 版）"
        if zh
        else f"Bill #{bill['id']} ({bill['date']}, revision {bill['revision']})"
    )
    return "\n".join([title, *lines, total])


def _width(s: str) -> int:
    # East Asian characters take two columns in a monospace font.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _pad(s: str, width: int, *, right: bool) -> str:
    gap = " " * (width - _width(s))
    return gap + s if right else s + gap
