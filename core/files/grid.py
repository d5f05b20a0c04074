"""The grid: a table's header and rows as the original cell text, before any conversion.

CSV/TSV (delimiter by scoring and ``csv.Sniffer``), XLSX (openpyxl), XLS (xlrd) and JSON records
are all read into one :class:`Grid`, with headers cleaned (trimmed, empty ones named, duplicates
suffixed). Both the DataFrame loader (:mod:`core.files.tables`) and the sales-file reader start
from here, so they agree on every cell.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from core.errors import FileRejected
from core.files.names import file_ext
from core.files.sniff import (
    MIME_JSON,
    MIME_XLS,
    MIME_XLSX,
    SAMPLE,
    decode_bytes,
    delimiter_scores,
    json_tabular,
    sniff_kind,
)


@dataclass(slots=True)
class Grid:
    """Header and rows as the original cell text, plus where they came from."""

    header: list[str]
    rows: list[list[str]]
    row_numbers: list[int]  # 1-based row/line of each data row in the source, for messages
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a person sees; floats to Excel's 15 significant digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # 15 digits drop binary noise (0.1+0.2 -> 0.3) exactly as Excel displays the cell.
        return format(value, ".15g")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _grid_from_rows(raw: Sequence[Sequence[str]], fmt: str, first_row: int = 1) -> Grid:
    """Split header from data: the first non-empty row is the header; blank rows are dropped."""
    # "".join(...).strip() is the cheap test for a blank row: this runs once per row.
    blank = ["".join(r).strip() == "" for r in raw]
    keep = [i for i, b in enumerate(blank) if not b]
    if not keep:
        return Grid(header=[], rows=[], row_numbers=[], format=fmt)
    first, last = keep[0], keep[-1]
    blank_inside = sum(blank[first:last])
    grid = Grid(
        header=list(raw[first]),
        rows=[list(raw[i]) for i in keep[1:]],
        row_numbers=[first_row + i for i in keep[1:]],
        format=fmt,
    )
    if blank_inside:
        grid.notes.append(f"{blank_inside} empty rows skipped")
    return grid


def choose_delimiter(sample: str, name: str | None) -> tuple[str, float]:
    """The delimiter of a CSV/TSV from its first ~64 KB of text, and how consistently it splits
    the rows (0 when nothing does: a single column)."""
    scores = delimiter_scores(sample)
    best = max(scores.items(), key=lambda kv: kv[1], default=(",", 0.0))
    delimiter = best[0] if best[1] > 0 else ","
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        sniffed = None
    # The Sniffer is right most of the time but can pick a character that merely recurs inside
    # quoted text; keep its answer only when it splits the rows at least as consistently.
    if sniffed is not None and scores.get(sniffed, 0.0) >= best[1] and scores.get(sniffed, 0) > 0:
        delimiter = sniffed
    if file_ext(name) in (".tsv", ".tab") and scores.get("\t", 0.0) > 0:
        delimiter = "\t"
    return delimiter, best[1]


def csv_rejected(name: str | None, exc: csv.Error) -> FileRejected:
    """The refusal for text the csv module cannot split."""
    return FileRejected(
        f"Cannot parse {name or 'the file'} as CSV: {exc} (an unclosed quote, or a cell "
        "over 128 KB).",
        zh=f"无法按 CSV 解析 {name or '该文件'}：{exc}（可能有未闭合的引号，或单元格超过 128 KB）。",
    )


def csv_notes(
    encoding: str, delimiter: str, endings: tuple[int, int, int], score: float
) -> list[str]:
    """The notes every CSV/TSV starts with; ``endings`` counts \\r\\n, lone \\n, lone \\r."""
    notes = [f"encoding {encoding.upper()}", f"delimiter {delimiter_name(delimiter)}"]
    if sum(1 for c in endings if c) > 1:
        notes.append("mixed line endings (\\r\\n, \\n, \\r) read as one")
    if score == 0:
        notes.append("a single column (no delimiter found)")
    return notes


def _grid_csv(text: str, name: str | None, encoding: str) -> Grid:
    delimiter, score = choose_delimiter(text[:SAMPLE], name)
    try:
        raw = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise csv_rejected(name, exc) from exc
    grid = _grid_from_rows(raw, "TSV" if delimiter == "\t" else "CSV")
    grid.encoding = encoding
    grid.delimiter = delimiter
    crlf = text.count("\r\n")
    endings = (crlf, text.count("\n") - crlf, text.count("\r") - crlf)
    grid.notes[:0] = csv_notes(encoding, delimiter, endings, score)
    return grid


def delimiter_name(delimiter: str) -> str:
    """A delimiter as a word for notes and summaries ("comma", "tab", ...)."""
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}.get(
        delimiter, repr(delimiter)
    )


def _grid_xlsx(data: bytes) -> Grid:
    sheets = _xlsx_sheets(data)
    return next(iter(sheets[1]), None) or Grid([], [], [], format="XLSX", sheets=sheets[0])


def _xlsx_sheets(data: bytes, every: bool = False) -> tuple[list[str], list[Grid]]:
    """Sheet names, and the first non-empty sheet's grid (``every``: each non-empty one)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, zip errors...
        raise FileRejected(
            f"Cannot open the Excel workbook: {exc}", zh=f"无法打开 Excel 工作簿：{exc}"
        ) from exc
    found: list[Grid] = []
    try:
        sheets = list(book.sheetnames)
        for ws in book.worksheets:
            # Other writers leave a wrong <dimension>; without this read-only mode truncates.
            ws.reset_dimensions()
            rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
            grid = _grid_from_rows(rows, "XLSX")
            if grid.header:
                found.append(_sheet_notes(grid, ws.title, sheets))
                if not every:
                    break
    finally:
        book.close()
    return sheets, found


def _grid_xls(data: bytes) -> Grid:
    sheets = _xls_sheets(data)
    return next(iter(sheets[1]), None) or Grid([], [], [], format="XLS", sheets=sheets[0])


def _xls_sheets(data: bytes, every: bool = False) -> tuple[list[str], list[Grid]]:
    """Sheet names, and the first non-empty sheet's grid (``every``: each non-empty one)."""
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:
        raise FileRejected(
            f"Cannot open the Excel workbook: {exc}", zh=f"无法打开 Excel 工作簿：{exc}"
        ) from exc
    found: list[Grid] = []
    try:
        sheets = list(book.sheet_names())
        for index, title in enumerate(sheets):
            ws = book.sheet_by_index(index)
            rows: list[list[str]] = []
            for r in range(ws.nrows):
                row = []
                for cell in ws.row(r):
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        value: Any = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
                    elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                        value = bool(cell.value)
                    elif cell.ctype == xlrd.XL_CELL_ERROR:
                        value = xlrd.error_text_from_code.get(cell.value, "#ERROR")
                    else:
                        value = cell.value
                    row.append(_cell_text(value))
                rows.append(row)
            grid = _grid_from_rows(rows, "XLS")
            if grid.header:
                found.append(_sheet_notes(grid, title, sheets))
                if not every:
                    break
    finally:
        book.release_resources()
    return sheets, found


def _sheet_notes(grid: Grid, title: str, sheets: list[str]) -> Grid:
    grid.sheet = title
    grid.sheets = sheets
    if len(sheets) > 1:
        skipped = sheets[: sheets.index(title)]
        note = f"sheet {title!r} of {sheets}"
        if skipped:
            note += f" (the first non-empty one; {skipped} empty)"
        grid.notes.insert(0, note)
    return grid


def _grid_json(text: str) -> Grid:
    # Numbers as their original text: "3.10" stays "3.10" and becomes Decimal("3.10") later.
    value = json.loads(text.lstrip("\ufeff"), parse_float=str, parse_int=str)
    records = json_tabular(value)
    if records is None:
        raise FileRejected(
            "This JSON is not a table (expected a list of records like "
            '[{"name": ..., "quantity": ...}, ...]).',
            zh='此 JSON 不是表格（应为记录列表，例如 [{"name": ..., "quantity": ...}, ...]）。',
        )
    header: list[str] = []
    for rec in records:
        header.extend(k for k in rec if k not in header)

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    rows = [[cell(rec.get(k)) for k in header] for rec in records]
    grid = _grid_from_rows([header, *rows], "JSON")
    grid.notes.insert(0, f"JSON list of {len(records)} records")
    return grid


def read_grid(data: bytes, name: str | None) -> Grid:
    """The table in ``data`` as cell text with a cleaned header; :class:`FileRejected` when
    the bytes are not a table (``name`` is a hint for the type and the messages)."""
    kind, mime = sniff_kind(data, name or "")
    if kind != "table":
        raise FileRejected(
            f"{name or 'The file'} is not a table ({mime}).",
            zh=f"{name or '该文件'} 不是表格（{mime}）。",
        )
    if mime == MIME_XLSX:
        grid = _grid_xlsx(data)
    elif mime == MIME_XLS:
        grid = _grid_xls(data)
    else:
        text, encoding = decode_bytes(data)
        if mime == MIME_JSON:
            grid = _grid_json(text)
            grid.encoding = encoding
        else:
            grid = _grid_csv(text, name, encoding)
    _clean_header(grid)
    return grid


_INVISIBLE = re.compile(r"[\ufeff\u200b\u200c\u200d\u2060\xa0]")


def header_text(cell: str) -> str:
    """A header cell trimmed, with BOM remnants and invisible spaces gone."""
    return _INVISIBLE.sub(" ", cell).strip()


def _clean_header(grid: Grid) -> None:
    """Trim headers, drop BOM remnants, name empty ones, make duplicates unique."""
    width = max([len(grid.header), *(len(r) for r in grid.rows)], default=0)
    header = [header_text(h) for h in grid.header]
    header += [""] * (width - len(header))
    rows = grid.rows
    if any(len(r) != width for r in rows):
        rows = [r + [""] * (width - len(r)) for r in rows]
    # A column with neither header nor data (trailing commas) is noise, not a column.
    keep = [i for i in range(width) if header[i] or any(r[i].strip() for r in rows)]
    dropped = width - len(keep)
    header = [header[i] for i in keep]
    if dropped:
        rows = [[r[i] for i in keep] for r in rows]
    notes = [f"{dropped} empty columns dropped"] if dropped else []
    header, named = name_columns(header)
    grid.header, grid.rows = header, rows
    grid.notes.extend([*notes, *named])


def name_columns(header: list[str]) -> tuple[list[str], list[str]]:
    """Empty headers named ``column_N`` and duplicates suffixed ``_2``; the header and notes."""
    header = list(header)
    notes = []
    unnamed = [i for i, h in enumerate(header) if not h]
    for i in unnamed:
        header[i] = f"column_{i + 1}"
    if unnamed:
        notes.append(f"empty headers named {[header[i] for i in unnamed]}")
    seen: Counter[str] = Counter()
    renamed = []
    # The names in the header as it is being renamed (a set: 10,000 columns must not be
    # quadratic); an earlier copy of a renamed name always stays, so nothing is removed.
    taken = set(header)
    for i, h in enumerate(header):
        seen[h] += 1
        if seen[h] > 1:
            new = f"{h}_{seen[h]}"
            while new in taken:
                new += "_"
            renamed.append(f"{h!r} -> {new!r}")
            header[i] = new
            taken.add(new)
    if renamed:
        notes.append(f"duplicate headers renamed: {', '.join(renamed)}")
    return header, notes


def read_grids(data: bytes, name: str | None) -> list[Grid]:
    """Like :func:`read_grid`, but a workbook gives one grid per non-empty sheet (in order);
    any other table is one grid. Empty workbooks give an empty list."""
    kind, mime = sniff_kind(data, name or "")
    if kind != "table" or mime not in (MIME_XLSX, MIME_XLS):
        return [read_grid(data, name)]
    _, grids = (_xlsx_sheets if mime == MIME_XLSX else _xls_sheets)(data, every=True)
    for grid in grids:
        _clean_header(grid)
    return grids
