"""read_sales_items: the four /bill columns in Chinese or English, exact Decimals, clear refusals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.bills.sales_file import read_sales_items
from core.errors import FileRejected
from tests.files.corpus import CORPUS

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_example_file_is_a_plausible_day() -> None:
    items = read_sales_items(ROOT / "examples" / "flower_sales.csv")
    names = {i["name"] for i in items}
    assert {
        "向日葵",
        "玫瑰",
        "百合",
        "康乃馨",
        "郁金香",
        "满天星",
        "洋桔梗",
        "绣球",
        "雏菊",
        "勿忘我",
    } <= names
    assert len(items) >= 10
    for item in items:
        assert item["unit_price"] > item["unit_cost"] > 0
        assert item["quantity"] == item["quantity"].to_integral_value()
        assert item["unit_cost"].as_tuple().exponent == -2  # written with cents: "3.50"


def test_decimal_text_is_kept_exactly(tmp_path: Path) -> None:
    path = write(
        tmp_path, "s.csv", '花名,数量,进价,售价\n玫瑰,3,3.10,0.1\n百合,2,"1,200.50",¥9.90\n'
    )
    items = read_sales_items(path)
    assert items[0] == {
        "name": "玫瑰",
        "quantity": Decimal("3"),
        "unit_cost": Decimal("3.10"),
        "unit_price": Decimal("0.1"),
    }
    assert str(items[0]["unit_cost"]) == "3.10"  # not 3.1000000000000000888 via float
    assert items[1]["unit_cost"] == Decimal("1200.50") and items[1]["unit_price"] == Decimal("9.90")


def test_units_in_headers_and_gbk(tmp_path: Path) -> None:
    text = "品名, 销量 ,进价（元）,零售价(元/支)\n玫瑰,40,3.50,10\n"
    items = read_sales_items(write(tmp_path, "gbk.csv", text, "gbk"))
    assert items == [
        {
            "name": "玫瑰",
            "quantity": Decimal(40),
            "unit_cost": Decimal("3.50"),
            "unit_price": Decimal(10),
        }
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Item,Qty,Unit Cost (CNY),Unit Price (CNY)",
        "flower,quantity,unit_cost,unit_price",
        "PRODUCT, COUNT, COST, PRICE",
        "Name;Quantity;Cost Price;Selling Price",
    ],
)
def test_english_headers(tmp_path: Path, header: str) -> None:
    sep = ";" if ";" in header else ","
    path = write(tmp_path, "en.csv", f"{header}\nRose{sep}3{sep}2.50{sep}6\n")
    assert read_sales_items(path) == [
        {
            "name": "Rose",
            "quantity": Decimal(3),
            "unit_cost": Decimal("2.50"),
            "unit_price": Decimal(6),
        }
    ]


def test_total_rows_and_empty_rows_are_skipped(tmp_path: Path) -> None:
    text = (
        "花名,数量,进价,售价\n玫瑰,40,3.5,10\n,,,\n\n百合,12,6,18\n"
        "合计,52,,\n总计：,52,,\nTotal,52,,\n"
    )
    items = read_sales_items(write(tmp_path, "t.csv", text))
    assert [i["name"] for i in items] == ["玫瑰", "百合"]


def test_legacy_xls_with_total_row() -> None:
    items = read_sales_items(CORPUS / "legacy_sales.xls")
    assert [(i["name"], i["quantity"], i["unit_cost"]) for i in items] == [
        ("玫瑰", Decimal(40), Decimal("3.5")),
        ("百合", Decimal(12), Decimal("6.8")),
        ("向日葵", Decimal(20), Decimal(4)),
    ]


def test_json_records_keep_decimal_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "items.json",
        '[{"name": "玫瑰", "qty": 3, "cost": 3.10, "price": 9.90}]',
    )
    assert read_sales_items(path)[0]["unit_cost"] == Decimal("3.10")
    assert str(read_sales_items(path)[0]["unit_price"]) == "9.90"


def test_stored_blob_without_extension_reads_by_content(tmp_path: Path) -> None:
    blob = tmp_path / "ab" / ("ab" + "0" * 62)
    blob.parent.mkdir()
    blob.write_bytes("花名,数量,进价,售价\n玫瑰,1,2,3\n".encode("gb18030"))
    assert read_sales_items(blob, "销售.csv")[0]["name"] == "玫瑰"


def test_unmappable_columns_list_what_was_found(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", "colour,size,数量\nred,3,1\n")
    with pytest.raises(FileRejected) as caught:
        read_sales_items(path)
    err = caught.value
    assert "Columns found: colour, size, 数量" in err.message
    assert "name, unit cost, unit price" in err.message
    assert "unit cost: 进价/成本/成本价/单位成本" in err.message and "unit_price" in err.message
    assert err.zh and "colour, size, 数量" in err.zh and "找不到名称、进价、售价列" in err.zh


@pytest.mark.parametrize(
    ("row", "en", "zh"),
    [
        ("玫瑰,abc,3,5", "Row 3, column '数量': quantity 'abc' is not a number", "第 3 行"),
        ("玫瑰,-2,3,5", "Row 3, column '数量': quantity -2 is negative", "是负数"),
        ("玫瑰,2,,5", "Row 3, column '进价': unit cost '(empty)' is not a number", "进价"),
        ("玫瑰,2,3,5元", "column '售价': unit price '5元' is not a number", "不是数字"),
        ("玫瑰,2,3,-0.5", "unit price -0.5 is negative", "售价"),
        (",2,3,5", "row 3 has numbers but no '花名'", "第 3 行"),
    ],
)
def test_bad_cells_name_row_and_column(tmp_path: Path, row: str, en: str, zh: str) -> None:
    path = write(tmp_path, "s.csv", f"花名,数量,进价,售价\n百合,1,2,3\n{row}\n")
    with pytest.raises(FileRejected) as caught:
        read_sales_items(path)
    assert en in caught.value.message
    assert caught.value.zh and zh in caught.value.zh


def test_header_only_and_non_table_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="no sales rows"):
        read_sales_items(write(tmp_path, "h.csv", "花名,数量,进价,售价\n"))
    with pytest.raises(FileRejected, match="not a table"):
        read_sales_items(write(tmp_path, "n.md", "# 玫瑰 40 支\n"))
    with pytest.raises(FileRejected, match="not a table"):
        read_sales_items(write(tmp_path, "config.json", '{"shop": "Bloom"}'))
