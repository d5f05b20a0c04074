"""Bills to CSV (UTF-8 with BOM), XLSX or JSON, with spreadsheet formula injection defused."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from core.bills.model import Bill
from core.bills.money import format_money, format_quantity

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
