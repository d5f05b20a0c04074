"""The intake corpus: odd and bad files, each with the outcome it must have.

Files are built here from code (so an encoding or a line ending is visible in the source), except
``corpus/legacy_sales.xls``: no installed library writes BIFF8, so that one was written once with
xlwt 1.3.0 (sheets "封面" empty, "销售" with 花名/数量/进价(元)/售价(元)/日期 and a 合计 row).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "corpus"

FLOWERS_CSV = "花名,数量,进价,售价\n玫瑰,40,3.50,10.00\n百合,12,6.80,18.00\n向日葵,20,4.00,12.00\n"
BIG5_CSV = "品名,數量,進價,售價\n鬱金香,10,5.50,15.00\n滿天星,3,12.00,28.00\n繡球,2,15.00,35.00\n"

COVID_CSV = (
    "Serial Number,Country,Total Cases,Total Deaths,Total Recovered,Active Cases,Total Test,"
    "Population\n"
    '1,USA,"104,196,861","1,132,935","101,322,779","1,741,147","1,159,832,679","334,805,269"\n'
    '2,India,"44,682,784","530,740","44,150,289","1,755","915,265,788","1,406,631,776"\n'
    '3,France,"39,524,311","164,233","39,264,546","95,532","271,490,188","65,584,518"\n'
    "4,Diamond Princess,712,13,699,0,N/A,N/A\n"
    '5,Tokelau,5,N/A,N/A,5,N/A,"1,378"\n'
    "6,Vatican City,29,N/A,29,0,N/A,799\n"
)


def minimal_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF showing ``lines`` in Helvetica, with a correct xref table."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = "BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({esc(ln)}) Tj T*" for ln in lines) + " ET"
    stream = ops.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def tiny_png(width: int = 2, height: int = 3) -> bytes:
    """A valid RGB PNG of the given size (all black)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def tiny_jpeg() -> bytes:
    """The start of a JFIF file: enough for content sniffing, which is all intake does."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


def xlsx_several_sheets() -> bytes:
    """A workbook whose first sheet is empty; the data is on the second, "Data"."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    data = wb.create_sheet("Data")
    data.append(["花名", "数量", "进价", "售价", "备注"])
    data.append(["玫瑰", 40, 3.5, 10, None])
    data.append(["百合", 12, 0.1 + 0.2, 18, "N/A"])  # 0.30000000000000004 is Excel noise
    data.append(["郁金香", 8, 5.5, 15, '=HYPERLINK("http://evil","x")'])
    wb.create_sheet("Notes").append(["written by hand"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def wide_csv(columns: int = 80) -> bytes:
    header = ",".join(f"measurement_column_{i:03d}" for i in range(columns))
    rows = [",".join(str(r * columns + c) for c in range(columns)) for r in range(10)]
    return ("\n".join([header, *rows]) + "\n").encode()


@dataclass(frozen=True)
class Accepted:
    """What intake and :func:`core.files.load_table` must report for an accepted file."""

    kind: str
    mime: str
    encoding: str | None = None
    delimiter: str | None = None
    rows: int | None = None
    columns: list[str] | None = None
    dtypes: dict[str, str] = field(default_factory=dict)  # column -> int/float/text
    notes: tuple[str, ...] = ()  # fragments that must appear in the notes
    check: Callable[[Any], None] | None = None  # extra assertions on the LoadedTable


@dataclass(frozen=True)
class Rejected:
    """A refusal, with a fragment of the English and of the Chinese message."""

    en: str
    zh: str


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    data: bytes
    expect: Accepted | Rejected


def _quoted_check(t: Any) -> None:
    assert t.df.loc[0, "flower"] == "Rose, red"
    assert t.df.loc[1, "note"] == "line one\nline two"
    assert t.df["qty"].tolist() == [3, 4]


def _covid_check(t: Any) -> None:
    usa = t.df[t.df["Country"] == "USA"].iloc[0]
    assert usa["Total Cases"] == 104_196_861 and usa["Population"] == 334_805_269
    assert t.df["Total Test"].isna().sum() == 3
    assert t.df["Total Cases"].sum() == 104_196_861 + 44_682_784 + 39_524_311 + 712 + 5 + 29


def _na_check(t: Any) -> None:
    assert t.df["qty"].isna().tolist() == [False, True, True, True, True, True, True]
    assert t.df["qty"].sum() == 5
    assert t.df["who"].tolist()[0] == "a"


def _formula_check(t: Any) -> None:
    assert t.df.loc[0, "link"] == '=HYPERLINK("http://evil","x")'
    assert t.df.loc[1, "link"] == "=1+1"  # not 2: nothing is evaluated


def _xlsx_check(t: Any) -> None:
    assert t.sheet == "Data" and t.sheets == ["Cover", "Data", "Notes"]
    assert t.df["进价"].tolist() == [3.5, 0.3, 5.5]
    # Formulas are read as Excel's cached result, never evaluated; openpyxl wrote none here.
    assert t.df["备注"].isna().tolist() == [True, True, True]


def _xls_check(t: Any) -> None:
    assert t.sheet == "销售" and t.sheets == ["封面", "销售"]
    assert t.df["日期"].tolist()[:3] == ["2026-11-24"] * 3
    assert t.df["花名"].tolist() == ["玫瑰", "百合", "向日葵", "合计"]


def _json_check(t: Any) -> None:
    assert t.df["unit_cost"].tolist() == [3.1, 2.0]
    assert t.df["tags"].tolist()[0] == '["red", "long"]'


def _dup_check(t: Any) -> None:
    assert t.df.loc[0, "a_2"] == 3 and t.df.loc[0, "column_2"] == 2


def _gb18030_check(t: Any) -> None:
    assert t.df["名称"].tolist() == ["𠀀", "䶮"]


def cases() -> list[Case]:
    """The whole corpus (built fresh: each test may write its files where it likes)."""
    utf16 = "\ufeff" + "花名\t数量\t售价\r\n玫瑰\t40\t10.00\r\n百合\t12\t18.00\r\n"
    return [
        # --- encodings -------------------------------------------------------------------
        Case(
            "utf8",
            "flowers.csv",
            FLOWERS_CSV.encode(),
            Accepted(
                "table",
                "text/csv",
                encoding="utf-8",
                delimiter=",",
                rows=3,
                columns=["花名", "数量", "进价", "售价"],
                dtypes={"花名": "text", "数量": "int", "进价": "float"},
            ),
        ),
        Case(
            "utf8_bom",
            "bom.csv",
            b"\xef\xbb\xbf" + FLOWERS_CSV.encode(),
            Accepted(
                "table",
                "text/csv",
                encoding="utf-8-sig",
                rows=3,
                columns=["花名", "数量", "进价", "售价"],
            ),
        ),
        Case(
            "gbk",
            "gbk.csv",
            FLOWERS_CSV.encode("gbk"),
            Accepted(
                "table",
                "text/csv",
                encoding="gbk",
                rows=3,
                notes=("encoding GBK",),
                columns=["花名", "数量", "进价", "售价"],
            ),
        ),
        Case(
            "gbk_tiny",
            "tiny.csv",
            "花名\n玫瑰\n".encode("gbk"),
            Accepted(
                "table",
                "text/csv",
                encoding="gbk",
                rows=1,
                columns=["花名"],
                notes=("single column",),
            ),
        ),
        Case(
            "gb18030_only",
            "rare.csv",
            "名称,备注\n𠀀,罕见字\n䶮,龑\n".encode("gb18030"),
            Accepted(
                "table",
                "text/csv",
                encoding="gb18030",
                rows=2,
                check=_gb18030_check,
            ),
        ),
        Case(
            "big5",
            "big5.csv",
            BIG5_CSV.encode("big5"),
            Accepted(
                "table",
                "text/csv",
                encoding="big5",
                rows=3,
                columns=["品名", "數量", "進價", "售價"],
            ),
        ),
        Case(
            "big5_tiny",
            "tw.csv",
            "花名\n玫瑰\n".encode("big5"),
            Accepted(
                "table",
                "text/csv",
                encoding="big5",
                rows=1,
                columns=["花名"],
            ),
        ),
        Case(
            "cp1252",
            "ventes.csv",
            "nom;prix\ncafé;3\ncrème;4\n".encode("cp1252"),
            Accepted(
                "table",
                "text/csv",
                encoding="cp1252",
                delimiter=";",
                rows=2,
                dtypes={"prix": "int"},
            ),
        ),
        # Decision: UTF-16 *with* a BOM is accepted -- it is what Excel's "Unicode Text" writes.
        Case(
            "utf16_bom_txt",
            "export.txt",
            utf16.encode("utf-16"),
            Accepted(
                "table",
                "text/tab-separated-values",
                encoding="utf-16",
                delimiter="\t",
                rows=2,
                columns=["花名", "数量", "售价"],
            ),
        ),
        # ... and without a BOM it is refused with the fix, rather than guessed.
        Case(
            "utf16_nobom", "export.csv", utf16[1:].encode("utf-16-le"), Rejected("UTF-16", "UTF-16")
        ),
        # --- delimiters, quoting, line endings -------------------------------------------
        Case(
            "semicolon",
            "semi.csv",
            b"name;qty;price\nrose;3;2.5\nlily;4;3\n",
            Accepted(
                "table",
                "text/csv",
                delimiter=";",
                rows=2,
                columns=["name", "qty", "price"],
            ),
        ),
        Case(
            "tab",
            "sales.tsv",
            b"name\tqty\nrose\t3\nlily\t4\n",
            Accepted(
                "table",
                "text/tab-separated-values",
                delimiter="\t",
                rows=2,
            ),
        ),
        Case(
            "pipe",
            "pipe.csv",
            b"name|qty|price\nrose|3|2.5\nlily|4|3\ntulip|1|9\n",
            Accepted(
                "table",
                "text/csv",
                delimiter="|",
                rows=3,
                dtypes={"price": "float"},
            ),
        ),
        Case(
            "quoted",
            "quoted.csv",
            b'flower,qty,note\n"Rose, red",3,"plain"\nLily,4,"line one\nline two"\n',
            Accepted("table", "text/csv", delimiter=",", rows=2, check=_quoted_check),
        ),
        Case(
            "mixed_endings",
            "mixed.csv",
            b"a,b\r\n1,2\n3,4\r5,6\r\n",
            Accepted(
                "table",
                "text/csv",
                rows=3,
                notes=("mixed line endings",),
                dtypes={"a": "int"},
            ),
        ),
        Case(
            "header_only",
            "header.csv",
            "花名,数量,进价,售价\n".encode(),
            Accepted(
                "table",
                "text/csv",
                rows=0,
                columns=["花名", "数量", "进价", "售价"],
                notes=("header only",),
            ),
        ),
        # --- cleaning --------------------------------------------------------------------
        Case(
            "covid",
            "covid_worldwide.csv",
            COVID_CSV.encode(),
            Accepted(
                "table",
                "text/csv",
                delimiter=",",
                rows=6,
                dtypes={
                    "Total Cases": "int",
                    "Total Deaths": "int",
                    "Total Recovered": "int",
                    "Active Cases": "int",
                    "Total Test": "int",
                    "Population": "int",
                    "Country": "text",
                },
                notes=("thousands separators removed", "'N/A'"),
                check=_covid_check,
            ),
        ),
        Case(
            "na_cells",
            "na.csv",
            b"who,qty\na,5\nb,N/A\nc,n/a\nd,-\ne,\nf,NaN\ng,null\n",
            Accepted(
                "table",
                "text/csv",
                rows=7,
                dtypes={"qty": "int"},
                notes=("5 cells like",),
                check=_na_check,
            ),
        ),
        Case(
            "formula",
            "inject.csv",
            b'name,link\nx,"=HYPERLINK(""http://evil"",""x"")"\ny,=1+1\n',
            Accepted(
                "table",
                "text/csv",
                rows=2,
                dtypes={"link": "text"},
                notes=("not evaluated",),
                check=_formula_check,
            ),
        ),
        Case(
            "dup_headers",
            "dup.csv",
            b" a ,,a,\xef\xbb\xbfb\n1,2,3,4\n",
            Accepted(
                "table",
                "text/csv",
                rows=1,
                columns=["a", "column_2", "a_2", "b"],
                notes=("duplicate headers renamed", "empty headers named"),
                check=_dup_check,
            ),
        ),
        Case(
            "trailing_commas",
            "trail.csv",
            b"a,b,,\n1,2,,\n3,4,,\n",
            Accepted(
                "table",
                "text/csv",
                rows=2,
                columns=["a", "b"],
                notes=("2 empty columns dropped",),
            ),
        ),
        Case(
            "leading_zeros",
            "codes.csv",
            b"sku,qty\n00123,1\n00456,2\n",
            Accepted(
                "table",
                "text/csv",
                rows=2,
                dtypes={"sku": "text", "qty": "int"},
                notes=("leading zeros",),
            ),
        ),
        Case(
            "currency",
            "money.csv",
            'item,price\nrose,¥3.50\nlily,"$1,200.00"\n'.encode(),
            Accepted(
                "table",
                "text/csv",
                rows=2,
                dtypes={"price": "float"},
                notes=("currency signs removed",),
            ),
        ),
        Case(
            "blank_rows",
            "gaps.csv",
            b"\n\na,b\n1,2\n,\n\n3,4\n",
            Accepted(
                "table",
                "text/csv",
                rows=2,
                columns=["a", "b"],
                notes=("empty rows skipped",),
            ),
        ),
        # --- spreadsheets, JSON ----------------------------------------------------------
        Case(
            "xlsx_sheets",
            "book.xlsx",
            xlsx_several_sheets(),
            Accepted(
                "table",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                rows=3,
                notes=("first non-empty",),
                check=_xlsx_check,
            ),
        ),
        Case(
            "xls_legacy",
            "legacy.xls",
            (CORPUS / "legacy_sales.xls").read_bytes(),
            Accepted(
                "table",
                "application/vnd.ms-excel",
                rows=4,
                dtypes={"数量": "int", "进价(元)": "float"},
                check=_xls_check,
            ),
        ),
        # Content wins over the name: a real workbook called .csv is read as the workbook.
        Case(
            "xlsx_named_csv",
            "export.csv",
            xlsx_several_sheets(),
            Accepted(
                "table",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                rows=3,
            ),
        ),
        # ... and a CSV saved as .xls by a web export is read as the CSV it is.
        Case(
            "csv_named_xls",
            "report.xls",
            FLOWERS_CSV.encode(),
            Accepted(
                "table",
                "text/csv",
                rows=3,
                delimiter=",",
            ),
        ),
        Case(
            "no_extension",
            "sales",
            b"name,qty,price\nrose,3,2\nlily,4,3\ntulip,5,4\n",
            Accepted("table", "text/csv", rows=3),
        ),
        Case(
            "json_records",
            "items.json",
            json.dumps(
                [
                    {"name": "玫瑰", "unit_cost": 3.10, "qty": 2, "tags": ["red", "long"]},
                    {"name": "百合", "unit_cost": 2.0, "qty": 1, "tags": None},
                ],
                ensure_ascii=False,
            )
            .replace("3.1,", "3.10,")
            .encode(),
            Accepted(
                "table",
                "application/json",
                rows=2,
                notes=("JSON list of 2 records",),
                dtypes={"qty": "int", "unit_cost": "float", "tags": "text"},
                check=_json_check,
            ),
        ),
        Case(
            "json_wrapped",
            "api.json",
            b'{"data": [{"a": 1}, {"a": 2}]}',
            Accepted(
                "table",
                "application/json",
                rows=2,
                columns=["a"],
            ),
        ),
        # --- text, PDF, images -----------------------------------------------------------
        Case(
            "json_config",
            "config.json",
            b'{"shop": "Bloom", "open": [9, 18]}',
            Accepted("text", "application/json"),
        ),
        Case(
            "txt",
            "notes.txt",
            "今天卖得不错，玫瑰卖完了。\nRoses sold out.\n".encode(),
            Accepted("text", "text/plain"),
        ),
        Case(
            "txt_gbk",
            "notes_gbk.txt",
            "今天卖得不错，玫瑰卖完了。\n".encode("gbk"),
            Accepted("text", "text/plain"),
        ),
        # Decision: a .txt is a table only when tab-separated (Excel's "Unicode Text");
        # comma-separated lines in a .txt stay text, since prose can look regular.
        Case("commas_in_txt", "list.txt", b"a,b\n1,2\n3,4\n", Accepted("text", "text/plain")),
        Case(
            "tabs_in_txt",
            "export.txt",
            b"a\tb\n1\t2\n3\t4\n",
            Accepted(
                "table",
                "text/tab-separated-values",
                delimiter="\t",
                rows=2,
            ),
        ),
        Case(
            "md_mentions_pdf",
            "pdf-notes.md",
            b"# Notes\n\nA PDF starts with the bytes %PDF-1.7.\n",
            Accepted("text", "text/markdown"),
        ),
        Case(
            "md",
            "README.md",
            b"# Shop\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            Accepted("text", "text/markdown"),
        ),
        Case(
            "pdf",
            "report.pdf",
            minimal_pdf(["Hello tallybot", "Roses 40"]),
            Accepted("pdf", "application/pdf"),
        ),
        Case("png", "photo.png", tiny_png(), Accepted("image", "image/png")),
        Case("jpeg", "photo.jpg", tiny_jpeg(), Accepted("image", "image/jpeg")),
        # --- refusals --------------------------------------------------------------------
        Case("empty", "empty.csv", b"", Rejected("is empty", "空文件")),
        Case("binary_csv", "sales.csv", bytes(range(256)) * 8, Rejected("binary", "二进制")),
        Case(
            "control_chars",
            "ctl.csv",
            b"a,b\n" + b"\x01\x02\x03\x04" * 50,
            Rejected("binary", "二进制"),
        ),
        Case("png_as_csv", "sales.csv", tiny_png(), Rejected("is a PNG image", "PNG 图片")),
        Case("pdf_as_csv", "sales.csv", minimal_pdf(["x"]), Rejected("is a PDF", "PDF")),
        Case(
            "zip_not_xlsx",
            "sales.xlsx",
            zip_of({"a.csv": b"a,b\n1,2\n"}),
            Rejected("zip archive, not an Excel workbook", "不是 Excel 工作簿"),
        ),
        Case(
            "zip_plain",
            "archive.zip",
            zip_of({"a.txt": b"x"}),
            Rejected("zip archive", "zip 压缩包"),
        ),
        Case(
            "exe",
            "sales.csv",
            b"MZ\x90\x00" + b"\x00" * 200,
            Rejected("Windows executable", "不支持的文件类型"),
        ),
        Case(
            "elf",
            "tool",
            b"\x7fELF\x02\x01\x01" + b"\x00" * 100,
            Rejected("Linux executable", "不支持"),
        ),
        Case(
            "gzip", "sales.csv.gz", b"\x1f\x8b\x08" + b"\x00" * 20, Rejected("gzip archive", "gzip")
        ),
        Case(
            "ole_not_excel",
            "old.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
            Rejected("old Office file", "旧版 Office"),
        ),
        Case(
            "html_as_xls",
            "report.xls",
            b"<html><body><table><tr><td>a</td></tr></table></body></html>",
            Rejected("web page", "网页"),
        ),
        Case(
            "text_as_pdf",
            "report.pdf",
            b"just some words\n",
            Rejected("not a valid PDF", "不是有效的 PDF"),
        ),
        Case("text_as_xlsx", "book.xlsx", b"a,b\n1,2\n", Rejected("not a valid XLSX", "XLSX")),
        Case("bad_json", "data.json", b'[{"a": 1},', Rejected("not valid JSON", "JSON")),
        Case(
            "damaged_pdf",
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj garbage",
            Rejected("damaged PDF", "损坏的 PDF"),
        ),
        # A .csv holding one line of prose is a one-column table with no rows, not an error.
        Case(
            "table_csv_prose",
            "prose.csv",
            b"just one line of prose\n",
            Accepted(
                "table",
                "text/csv",
                rows=0,
                columns=["just one line of prose"],
            ),
        ),
    ]
