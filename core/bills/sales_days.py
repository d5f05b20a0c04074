"""A sales file split into days: every sheet with sales columns, grouped by its date column.

The rows are read with the same column mapping as ``/bill`` (:mod:`core.bills.sales_file`), so
a bill made from a file never depends on anyone copying rows. A workbook is read sheet by
sheet; a sheet without the sales columns is named as skipped, never dropped silently. A file
with a date column (日期, date, ...) gives one day per date; without one, every row belongs
to the date the caller gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from core.bills.sales_file import has_sales_columns, items_of_grid
from core.errors import FileRejected
from core.files.grid import read_grids

_DAY = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")


@dataclass(slots=True)
class SheetRows:
    """What one sheet gave: its name (None for a CSV), rows read, and their dates."""

    sheet: str | None
    rows: int
    dates: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "rows": self.rows, "dates": self.dates}


@dataclass(slots=True)
class SalesDays:
    """The items of each day in a file, the sheets read and the sheets skipped."""

    file: str
    days: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sheets: list[SheetRows] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def sheet_phrase(self, lang: str) -> str:
        """``sheet 周一: 12 rows; sheet 周二: 8 rows`` (one line per file in a reply)."""
        parts = []
        for s in self.sheets:
            if s.sheet is None:
                parts.append(f"{s.rows} 行" if lang == "zh" else f"{s.rows} rows")
            elif lang == "zh":
                parts.append(f"工作表“{s.sheet}”{s.rows} 行")
            else:
                parts.append(f"sheet {s.sheet!r}: {s.rows} rows")
        for name in self.skipped:
            parts.append(
                f"工作表“{name}”没有销售列，已跳过"
                if lang == "zh"
                else f"sheet {name!r} skipped (no sales columns)"
            )
        return ("；" if lang == "zh" else "; ").join(parts)


def parse_day(text: str) -> str | None:
    """``2026-12-01``, ``2026/12/1``, ``2026年12月1日``, with or without a time -> ISO date."""
    m = _DAY.match(text or "")
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


def read_sales_days(path: Path, name: str, default_date: str, only: str | None = None) -> SalesDays:
    """Every sales row of the file at ``path`` by day. Rows without a date column belong to
    ``default_date``; ``only`` keeps one date. Raises FileRejected for a bad cell or date, for
    a file with no sheet of sales columns, and when ``only`` matches no row."""
    grids = read_grids(Path(path).read_bytes(), name)
    result = SalesDays(file=name)
    usable = [g for g in grids if has_sales_columns(g)]
    if not grids:
        raise FileRejected(f"{name} has no sales rows.", zh=f"{name} 中没有销售数据。")
    if not usable:
        items_of_grid(grids[0], name)  # raises: its message names the missing columns
    for grid in grids:
        if grid not in usable:
            result.skipped.append(grid.sheet or name)
            continue
        where = f"{name} [{grid.sheet}]" if grid.sheet and len(grids) > 1 else name
        items = items_of_grid(grid, where)
        dates: list[str] = []
        rows = 0
        for item in items:
            day = _day_of(item, where, default_date)
            if only is not None and day != only:
                continue
            rows += 1
            result.days.setdefault(day, []).append(item)
            if day not in dates:
                dates.append(day)
        result.sheets.append(SheetRows(grid.sheet if len(grids) > 1 else None, rows, dates))
    if not result.days:
        raise FileRejected(
            f"{name} has no sales rows for {only}.", zh=f"{name} 中没有 {only} 的销售数据。"
        )
    result.days = dict(sorted(result.days.items()))
    return result


def _day_of(item: dict[str, Any], where: str, default_date: str) -> str:
    if "date" not in item:
        return default_date
    day = parse_day(str(item["date"]))
    if day is None:
        shown = str(item["date"]) or "(empty)"
        raise FileRejected(
            f"{where}: row {item.get('row')}: {shown!r} is not a date (use YYYY-MM-DD).",
            zh=f"{where}：第 {item.get('row')} 行：{shown!r} 不是日期（请用 YYYY-MM-DD）。",
        )
    return day
