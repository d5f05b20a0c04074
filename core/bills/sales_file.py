"""The sales file behind ``/bill``: the four bill columns read as exact Decimals.

:func:`read_sales_items` reads name, quantity, unit cost and unit price from a table whose
headers are in Chinese or English, for the model-free ``/bill`` command. It starts from the same
:class:`~core.files.grid.Grid` as table loading, so both see the same cells.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.errors import FileRejected
from core.files.grid import Grid, read_grid
from core.files.names import capped_list
from core.files.numbers import number_text

# Shown to people as written here; matched after _norm_header (case, spaces, "_", units).
_FIELDS: dict[str, tuple[str, ...]] = {
    "name": (
        "花名", "品名", "商品", "名称", "商品名称", "品种", "花卉",
        "name", "item", "flower", "product", "item_name", "product_name", "flower_name",
    ),
    "quantity": (
        "数量", "销量", "销售数量", "件数", "qty", "quantity", "count", "sold", "units",
    ),
    "unit_cost": (
        "进价", "成本", "成本价", "单位成本", "进货价", "采购价",
        "unit_cost", "cost", "cost_price", "purchase_price",
    ),
    "unit_price": (
        "售价", "单价", "零售价", "销售价", "卖价",
        "unit_price", "price", "sale_price", "selling_price", "retail_price",
    ),
}  # fmt: skip
_FIELD_EN = {
    "name": "name",
    "quantity": "quantity",
    "unit_cost": "unit cost",
    "unit_price": "unit price",
}
_FIELD_ZH = {"name": "名称", "quantity": "数量", "unit_cost": "进价", "unit_price": "售价"}
_TOTAL_NAMES = {
    "合计",
    "总计",
    "小计",
    "总和",
    "共计",
    "total",
    "totals",
    "sum",
    "grandtotal",
    "subtotal",
}


def _norm_header(header: str) -> str:
    """``"Unit Cost (CNY)"`` -> ``"unitcost"``; ``"进价(元)"`` -> ``"进价"``."""
    h = unicodedata.normalize("NFKC", header).lower()
    h = re.sub(r"[(\[【{].*?[)\]】}]", "", h)  # units: (元), (CNY), [kg]; NFKC made （） ASCII
    return re.sub(r"[\s_\-./:：]+", "", h)


def _map_columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    normalised = [_norm_header(h) for h in header]
    for fld, names in _FIELDS.items():
        accepted = {_norm_header(n) for n in names}
        for i, h in enumerate(normalised):
            if h in accepted and i not in found.values():
                found[fld] = i
                break
    return found


def _decimal(text: str, *, row: int, column: str, what: str) -> Decimal:
    plain, _, _ = number_text(text)
    value: Decimal | None = None
    if plain is not None:
        with contextlib.suppress(InvalidOperation):
            value = Decimal(plain)
    if value is None or not value.is_finite():
        shown = text.strip() or "(empty)"
        raise FileRejected(
            f"Row {row}, column {column!r}: {what} {shown!r} is not a number.",
            zh=f"第 {row} 行，“{column}”列：{_zh_what(what)} {shown!r} 不是数字。",
        )
    if value < 0:
        raise FileRejected(
            f"Row {row}, column {column!r}: {what} {text.strip()} is negative.",
            zh=f"第 {row} 行，“{column}”列：{_zh_what(what)} {text.strip()} 是负数。",
        )
    return value


def _zh_what(what: str) -> str:
    return {"quantity": "数量", "unit cost": "进价", "unit price": "售价"}.get(what, what)


def read_sales_items(path: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The line items of a sales table for ``/bill``: name, quantity, unit cost, unit price.

    Headers are matched in Chinese or English, ignoring case, spaces, underscores and a unit in
    brackets ("进价(元)", "Unit Cost (CNY)"). Numbers are exact Decimals parsed from the cell
    text ("3.10" stays ``Decimal("3.10")``; thousands separators and a currency sign are
    allowed). Fully empty rows and total rows ("合计", "总计", "Total") are skipped. Raises
    :class:`FileRejected` naming the columns found, or the row and column of a bad cell.
    """
    display = name or Path(path).name
    return items_of_grid(read_grid(Path(path).read_bytes(), display), display)


def has_sales_columns(grid: Grid) -> bool:
    """True when the grid has all four bill columns."""
    return all(f in _map_columns(grid.header) for f in _FIELDS)


def items_of_grid(grid: Grid, display: str) -> list[dict[str, Any]]:
    """The sales rows of one grid (see :func:`read_sales_items`). With a date column (日期,
    date, ...), each item also has ``"date"``: the cell text, checked by the caller."""
    mapping = _map_columns(grid.header)
    missing = [f for f in _FIELDS if f not in mapping]
    if missing:
        found, found_zh = capped_list(grid.header) if grid.header else ("(none)", "(none)")
        accepted_en = "; ".join(f"{_FIELD_EN[f]}: {'/'.join(_FIELDS[f])}" for f in _FIELDS)
        accepted_zh = "；".join(f"{_FIELD_ZH[f]}：{'/'.join(_FIELDS[f])}" for f in _FIELDS)
        raise FileRejected(
            f"{display}: cannot find the {', '.join(_FIELD_EN[f] for f in missing)} column(s). "
            f"Columns found: {found}. Accepted column names — {accepted_en}.",
            zh=f"{display}：找不到{'、'.join(_FIELD_ZH[f] for f in missing)}列。"
            f"文件中的列：{found_zh}。可用的列名——{accepted_zh}。",
        )
    day_col = _date_column(grid.header, set(mapping.values()))
    items: list[dict[str, Any]] = []
    for number, row in zip(grid.row_numbers, grid.rows, strict=True):
        cells = {f: row[i].strip() for f, i in mapping.items()}
        if not any(cells.values()):
            continue
        if _norm_header(cells["name"]).rstrip(":：") in _TOTAL_NAMES:
            continue
        if not cells["name"]:
            raise FileRejected(
                f"{display}: row {number} has numbers but no {grid.header[mapping['name']]!r}.",
                zh=f"{display}：第 {number} 行有数字但没有“{grid.header[mapping['name']]}”。",
            )
        item: dict[str, Any] = {"name": cells["name"]}
        for fld in ("quantity", "unit_cost", "unit_price"):
            item[fld] = _decimal(
                cells[fld], row=number, column=grid.header[mapping[fld]], what=_FIELD_EN[fld]
            )
        if day_col is not None:
            item["date"] = row[day_col].strip()
            item["row"] = number
        items.append(item)
    if not items:
        raise FileRejected(
            f"{display} has the right columns but no sales rows.",
            zh=f"{display} 的列正确，但没有销售数据行。",
        )
    return items


_DATE_HEADERS = ("日期", "销售日期", "时间", "date", "day", "sale_date", "sales_date")


def _date_column(header: list[str], taken: set[int]) -> int | None:
    accepted = {_norm_header(n) for n in _DATE_HEADERS}
    for i, h in enumerate(header):
        if i not in taken and _norm_header(h) in accepted:
            return i
    return None
