"""Exports: one row per item, UTF-8 BOM CSV, typed XLSX cells, JSON = Bill.to_json()."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from core.bills import EXPORT_COLUMNS, Bill, Ledger, export_bills, safe_cell
from core.domain import Thread

EVIL = '=HYPERLINK("http://x")'


@pytest.fixture
async def saved(ledger: Ledger, thread: Thread) -> list[Bill]:
    await ledger.save(
        thread.id,
        "2024-05-01",
        [
            {"name": "向日葵", "quantity": 2, "unit_cost": "5", "unit_price": "12.5"},
            {"name": EVIL, "quantity": "1.5", "unit_cost": "0.1", "unit_price": "0.2"},
        ],
    )
    # A loss-making day: negative profit must stay a number, not become text.
    await ledger.save(
        thread.id,
        "2024-05-02",
        [{"name": "-rose", "quantity": 1, "unit_cost": "9", "unit_price": "4"}],
    )
    return await ledger.list()


def test_safe_cell() -> None:
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("向日葵") == "向日葵"
    assert safe_cell("") == ""


def test_csv(saved: list[Bill], tmp_path: Path) -> None:
    path = export_bills(saved, "csv", tmp_path / "out" / "bills.csv")
    assert path == tmp_path / "out" / "bills.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese names correctly
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == list(EXPORT_COLUMNS)
    assert len(rows) == 4  # header + one row per item
    first, evil, loss = (dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in rows[1:])
    assert first == {
        "bill_id": str(saved[0].id),
        "date": "2024-05-01",
        "currency": "CNY",
        "revision": "1",
        "item": "向日葵",
        "quantity": "2",
        "unit_cost": "5.00",
        "unit_price": "12.50",
        "cost": "10.00",
        "revenue": "25.00",
        "bill_cost": "10.15",
        "bill_revenue": "25.30",
        "bill_profit": "15.15",
    }
    assert evil["item"] == "'" + EVIL
    assert evil["quantity"] == "1.5"
    assert loss["item"] == "'-rose"
    assert loss["bill_profit"] == "-5.00"  # a number: no apostrophe


def test_xlsx(saved: list[Bill], tmp_path: Path) -> None:
    path = export_bills(saved, "xlsx", tmp_path / "bills.xlsx")
    ws = load_workbook(path).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == EXPORT_COLUMNS
    assert len(rows) == 4
    evil = dict(zip(EXPORT_COLUMNS, rows[2], strict=True))
    assert evil["item"] == "'" + EVIL
    assert ws.cell(row=3, column=5).data_type == "s"  # text, not a formula
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    loss = dict(zip(EXPORT_COLUMNS, rows[3], strict=True))
    assert isinstance(loss["bill_profit"], (int, float)) and loss["bill_profit"] == -5
    assert Decimal(str(evil["quantity"])) == Decimal("1.5")
    assert ws.cell(row=2, column=9).number_format == "0.00"


def test_json(saved: list[Bill], tmp_path: Path) -> None:
    path = export_bills(saved, "json", tmp_path / "bills.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == [b.to_json() for b in saved]
    assert data[0]["items"][1]["name"] == EVIL  # JSON is data, not a spreadsheet: kept as is


def test_directory_target_and_bad_format(saved: list[Bill], tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    path = export_bills(saved, "json", folder)
    assert path.parent == folder and path.suffix == ".json"
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temp file left behind
    with pytest.raises(ValueError, match="csv, xlsx or json"):
        export_bills(saved, "pdf", tmp_path / "x.pdf")  # type: ignore[arg-type]


def test_empty_export(tmp_path: Path) -> None:
    rows = export_bills([], "csv", tmp_path / "e.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows == [",".join(EXPORT_COLUMNS)]
