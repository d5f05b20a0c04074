"""Reports of a book: cost, revenue and profit per day, week, month or item, and the total.

A report reads each bill once, at its latest revision, and leaves voided bills out, so a bill
that was changed or replaced is never counted twice. Money stays ``Decimal``; the JSON form
(``tallybot bills report --json``, the ``bill_report`` tool) has money as decimal strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from core.bills.model import Bill
from core.bills.money import format_money
from core.errors import CommandError

By = Literal["day", "week", "month", "item"]
BY_VALUES: tuple[By, ...] = ("day", "week", "month", "item")
_ZERO = Decimal("0.00")


@dataclass(slots=True)
class Row:
    """One row: a day (``2026-12-01``), ISO week (``2026-W49``), month (``2026-12``) or item."""

    key: str
    cost: Decimal = _ZERO
    revenue: Decimal = _ZERO
    profit: Decimal = _ZERO
    bills: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cost": format_money(self.cost),
            "revenue": format_money(self.revenue),
            "profit": format_money(self.profit),
            "bills": self.bills,
        }


@dataclass(slots=True)
class Report:
    """A book's totals between two dates (inclusive; None: open-ended), grouped ``by``."""

    book: str | None
    date_from: str | None
    date_to: str | None
    by: By
    rows: list[Row] = field(default_factory=list)
    total: Row = field(default_factory=lambda: Row("total"))
    currencies: list[str] = field(default_factory=list)
    daily: list[Row] = field(default_factory=list)  # profit per day, for the chart

    def to_json(self) -> dict[str, Any]:
        """``{book, from, to, by, rows: [{key, cost, revenue, profit, bills}], total}``."""
        total = self.total.to_json()
        return {
            "book": self.book,
            "from": self.date_from,
            "to": self.date_to,
            "by": self.by,
            "rows": [r.to_json() for r in self.rows],
            "total": {k: total[k] for k in ("cost", "revenue", "profit")},
        }


def _key(day: str, by: By) -> str:
    if by == "day":
        return day
    if by == "month":
        return day[:7]
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def build_report(
    bills: Sequence[Bill],
    *,
    book: str | None,
    date_from: str | None,
    date_to: str | None,
    by: By = "day",
) -> Report:
    """Group ``bills`` (latest revisions, none voided) into a :class:`Report`."""
    if by not in BY_VALUES:
        raise CommandError(
            f"by must be one of {', '.join(BY_VALUES)}", zh=f"by 只能是 {'、'.join(BY_VALUES)}"
        )
    report = Report(book, date_from, date_to, by)
    rows: dict[str, Row] = {}
    days: dict[str, Row] = {}
    for bill in bills:
        if bill.voided:
            continue
        if bill.currency not in report.currencies:
            report.currencies.append(bill.currency)
        _add(days.setdefault(bill.date, Row(bill.date)), bill.cost, bill.revenue, 1)
        _add(report.total, bill.cost, bill.revenue, 1)
        if by != "item":
            _add(rows.setdefault(_key(bill.date, by), Row(_key(bill.date, by))), bill.cost,
                 bill.revenue, 1)  # fmt: skip
            continue
        for line in bill.items:
            _add(rows.setdefault(line.name, Row(line.name)), line.cost, line.revenue, 1)
    ordered = sorted(rows.values(), key=lambda r: (-r.profit, r.key)) if by == "item" else [
        rows[k] for k in sorted(rows)
    ]  # fmt: skip
    report.rows = ordered
    report.daily = [days[k] for k in sorted(days)]
    return report


def _add(row: Row, cost: Decimal, revenue: Decimal, bills: int) -> None:
    row.cost += cost
    row.revenue += revenue
    row.profit = row.revenue - row.cost
    row.bills += bills


def period(text: str, today: date | None = None) -> tuple[str, str]:
    """``today``, ``week`` (Monday to Sunday), ``month``, ``YYYY-MM``, ``YYYY-MM-DD`` or
    ``YYYY-MM-DD..YYYY-MM-DD`` -> inclusive ``(from, to)``. Raises CommandError."""
    now = today or date.today()
    word = text.strip().lower()
    try:
        if word in ("", "week", "本周", "this week"):
            start = now - timedelta(days=now.weekday())
            return start.isoformat(), (start + timedelta(days=6)).isoformat()
        if word in ("today", "今天", "day"):
            return now.isoformat(), now.isoformat()
        if word in ("month", "本月", "this month"):
            word = now.isoformat()[:7]
        if ".." in word:
            a, b = (part.strip() for part in word.split("..", 1))
            first, last = date.fromisoformat(a), date.fromisoformat(b)
            if first > last:
                first, last = last, first
            return first.isoformat(), last.isoformat()
        if len(word) == 7:
            first = date.fromisoformat(f"{word}-01")
            nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            return first.isoformat(), (nxt - timedelta(days=1)).isoformat()
        one = date.fromisoformat(word)
        return one.isoformat(), one.isoformat()
    except ValueError:
        raise CommandError(
            f"unknown period {text!r}; use today, week, month, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DD..YYYY-MM-DD",
            code="bad_period",
            zh=f"无法识别的时间段“{text}”；可用 today、week、month、YYYY-MM、YYYY-MM-DD 或 "
            "YYYY-MM-DD..YYYY-MM-DD",
        ) from None


def report_table(report: Report, lang: str) -> str:
    """A monospace table: one line per row, then the total."""
    zh = lang == "zh"
    head = {"day": "日期", "week": "周", "month": "月份", "item": "品名"}[report.by] if zh else (
        report.by
    )  # fmt: skip
    title = (
        f"报表 {report.book}（{report.date_from or '最早'} 至 {report.date_to or '最近'}）"
        if zh
        else f"Report {report.book} ({report.date_from or 'start'} to {report.date_to or 'now'})"
    )
    cols = ("成本", "收入", "利润", "账单") if zh else ("cost", "revenue", "profit", "bills")
    table = [(head, *cols)] + [
        (r.key, format_money(r.cost), format_money(r.revenue), format_money(r.profit), str(r.bills))
        for r in report.rows
    ]
    t = report.total
    table.append(("合计" if zh else "total", format_money(t.cost), format_money(t.revenue),
                  format_money(t.profit), str(t.bills)))  # fmt: skip
    widths = [max(_width(row[c]) for row in table) for c in range(5)]
    lines = ["  ".join(_pad(v, widths[c], c > 0) for c, v in enumerate(row)) for row in table]
    currency = "/".join(report.currencies)
    if not report.rows:
        lines.insert(1, "（没有账单）" if zh else "(no bills)")
    return "\n".join([f"{title} {currency}".rstrip(), *lines])


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _pad(s: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(s))
    return gap + s if right else s + gap
