"""Tables as pandas DataFrames: :func:`load_table` and the cleaning on the way.

A :class:`~core.files.grid.Grid` of cell text becomes a DataFrame: "N/A", "-", "null" and empty
cells are missing, a column whose every present cell is a number becomes int64/Int64/float64
(thousands separators and a currency sign allowed), codes with leading zeros stay text.
``notes`` tell the model what was done so its own code can do the same.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.files.grid import Grid, read_grid

# --- cleaning into a DataFrame -------------------------------------------------------------

_MISSING = {"", "n/a", "#n/a", "nan", "null", "none", "-", "--", "—", "#null!"}


@dataclass(slots=True)
class LoadedTable:
    """A table read from a file, plus what was detected and cleaned on the way.

    ``notes`` are short English sentences for the model ("encoding GBK", "thousands separators
    removed in columns ['Total Cases']"), so the code it writes can read the file the same way.
    """

    df: pd.DataFrame
    format: str  # "CSV" | "TSV" | "XLSX" | "XLS" | "JSON"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_NUMBER = re.compile(
    r"[+-]?(?:[¥￥$€£]\s*)?"
    r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
)


_MISSING_MAX = max(len(m) for m in _MISSING)


def _convert(cells: list[str | None]) -> tuple[Any, dict[str, bool]]:
    """One column of stripped text (missing as None) to numbers when every present cell is one.

    A 50 MB upload has millions of cells, so the common case goes through
    ``pandas.to_numeric`` (compiled) and the regular expression only sees the cells it could
    not parse (thousands separators, currency signs) and a first sample for the early exit.
    Returns the array and flags for the notes (thousands, currency, zeros, formula).
    """
    present = [c for c in cells if c is not None]
    flags = {
        "formula": any(c.startswith("=") for c in present),
        "thousands": False,
        "currency": False,
        "zeros": False,
    }

    def as_text() -> tuple[Any, dict[str, bool]]:
        return pd.array(cells, dtype="str"), flags

    if not present or not all(_NUMBER.fullmatch(c) for c in present[:50]):
        return as_text()
    nums = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    failed = np.flatnonzero(nums.isna().to_numpy())
    if len(failed):
        fixed = list(present)
        for i in failed:
            text = present[i]
            if not _NUMBER.fullmatch(text):
                return as_text()
            flags["thousands"] |= "," in text
            flags["currency"] |= bool(re.search(r"[¥￥$€£]", text))
            fixed[i] = re.sub(r"[¥￥$€£\s,]", "", text)
        present = fixed
        nums = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
        if nums.isna().any():
            return as_text()
    if not np.isfinite(nums.to_numpy(dtype="float64")).all():
        return as_text()  # "inf", "Infinity": to_numeric takes them, people do not mean them
    # "00123" is a code (zip, SKU), not the number 123: keep it as text.
    if any(
        len(c) > 1 and c.lstrip("+-")[:1] == "0" and c.lstrip("+-")[1:2].isdigit() for c in present
    ):
        flags["zeros"] = True
        return as_text()
    index = [i for i, c in enumerate(cells) if c is not None]
    if nums.dtype.kind in "iu" and not any(("." in c or "e" in c.lower()) for c in present):
        if len(index) == len(cells):
            return nums.to_numpy(dtype="int64"), flags
        out = pd.array([pd.NA] * len(cells), dtype="Int64")
        out[index] = nums.to_numpy(dtype="int64")
        return out, flags
    floats = np.full(len(cells), np.nan)
    floats[index] = nums.to_numpy(dtype="float64")
    return floats, flags


def _to_frame(grid: Grid) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    columns: dict[str, Any] = {}
    missing_tokens: Counter[str] = Counter()
    flagged: dict[str, list[str]] = {"thousands": [], "currency": [], "zeros": [], "formula": []}
    transposed = list(zip(*grid.rows, strict=True)) if grid.rows else [()] * len(grid.header)
    for col, raw in zip(grid.header, transposed, strict=True):
        cells: list[str | None] = []
        for value in raw:
            c = value.strip()
            if not c:
                cells.append(None)
            elif len(c) <= _MISSING_MAX and c.lower() in _MISSING:
                missing_tokens[c] += 1
                cells.append(None)
            else:
                cells.append(c)
        array, flags = _convert(cells)
        columns[col] = array
        for flag, on in flags.items():
            if on:
                flagged[flag].append(col)
    df = pd.DataFrame(columns, columns=grid.header)
    notes.extend(cleaning_notes(flagged, missing_tokens))
    return df, notes


def cleaning_notes(flagged: dict[str, list[str]], missing: Counter[str]) -> list[str]:
    """The notes that tell the model how columns were cleaned; both the whole-table loader and
    the streaming scan (:mod:`core.files.scan`) word them through here."""
    notes = []
    if flagged["thousands"]:
        notes.append(f"thousands separators removed in columns {flagged['thousands']}")
    if flagged["currency"]:
        notes.append(f"currency signs removed in columns {flagged['currency']}")
    if missing:
        total = sum(missing.values())
        shown = ", ".join(repr(t) for t, _ in missing.most_common(5))
        notes.append(f"{total} cells like {shown} treated as missing")
    if flagged["zeros"]:
        notes.append(f"columns {flagged['zeros']} kept as text (leading zeros)")
    if flagged["formula"]:
        notes.append(
            f"formula-like cells (starting with '=') in columns {flagged['formula']} kept as "
            "plain text, not evaluated"
        )
    return notes


def load_table_bytes(data: bytes, name: str | None) -> LoadedTable:
    """:func:`load_table` for bytes already in memory (intake checks before it stores)."""
    grid = read_grid(data, name)
    df, notes = _to_frame(grid)
    table = LoadedTable(
        df=df,
        format=grid.format,
        encoding=grid.encoding,
        delimiter=grid.delimiter,
        sheet=grid.sheet,
        sheets=grid.sheets,
        notes=[*grid.notes, *notes],
    )
    if not grid.header:
        table.notes.append("no header and no data")
    elif not grid.rows:
        table.notes.append("header only, no data rows")
    return table


def load_table(path: Path, name: str | None = None) -> LoadedTable:
    """Read a CSV/TSV/XLSX/XLS/JSON table from ``path`` (type by content; ``name`` is a hint).

    CSV: encoding via :func:`decode_bytes`; delimiter (comma, semicolon, tab, pipe) by
    ``csv.Sniffer`` checked against how consistently each candidate splits the rows. Excel: the
    first non-empty sheet, floats at Excel's 15 significant digits. Cleaning: headers trimmed,
    empty ones named ``column_N``, duplicates suffixed ``_2``; "N/A", "-", "null", "NaN" and
    empty cells are missing; a column whose every present cell is a number (thousands
    separators and a leading currency sign allowed) becomes int64/Int64/float64. Formula-like
    text (``=HYPERLINK(...)``) stays text. Raises :class:`FileRejected`.
    """
    return load_table_bytes(Path(path).read_bytes(), name or Path(path).name)
