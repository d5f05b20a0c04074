"""Short texts about a file for the model: a table's shape and first rows, text, images."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.files.grid import delimiter_name
from core.files.names import human_size

if TYPE_CHECKING:
    import pandas as pd

    from core.files.tables import LoadedTable

_MAX_PREVIEW_CELL = 24
_SUMMARY_LIMIT = 2000


# pandas is imported inside the table functions: text and image summaries (and everything that
# imports this module on the way to them) must not pay for it.
def _dtype_name(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "text"


def _preview_cell(value: Any) -> str:
    import pandas as pd

    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    text = format(value, "g") if isinstance(value, float) else str(value)
    text = text.replace("\n", " ").replace("|", "/")
    return text if len(text) <= _MAX_PREVIEW_CELL else text[: _MAX_PREVIEW_CELL - 1] + "…"


def summarize(table: LoadedTable, name: str, preview_rows: int) -> str:
    """A short text about the table for the model: format, shape, column types, first rows.

    Wide tables show as many columns as fit in about 2,000 characters and say how many more
    there are, so the summary never crowds out the conversation.
    """
    df = table.df
    where = [table.format]
    if table.encoding:
        where.append(f"encoding {table.encoding}")
    if table.delimiter:
        where.append(f"delimiter {delimiter_name(table.delimiter)}")
    if table.sheet:
        where.append(f"sheet {table.sheet!r}")
    return table_summary(
        TableFacts(
            where=where,
            rows=len(df),
            columns=[str(c) for c in df.columns],
            types=[_dtype_name(df[c]) for c in df.columns],
            head=[list(r) for r in df.head(preview_rows).itertuples(index=False)],
            notes=table.notes,
        ),
        name,
        preview_rows,
    )


@dataclass(slots=True)
class TableFacts:
    """What a table summary says, however it was read: the whole DataFrame, or a stream."""

    where: list[str]  # "CSV", "encoding utf-8", "delimiter comma", "sheet 'Sales'"
    rows: int
    columns: list[str]
    types: list[str]  # "int" | "float" | "bool" | "text", one per column
    head: list[list[Any]]  # the first rows' values (None / NaN / pd.NA for missing)
    notes: list[str]


def table_summary(facts: TableFacts, name: str, preview_rows: int) -> str:
    """The summary text of :func:`summarize` from its parts (see :class:`TableFacts`)."""
    columns = facts.columns
    head = f"{name}: {', '.join(facts.where)}; {facts.rows} rows × {len(columns)} columns"
    notes = [n for n in facts.notes if not n.startswith(("encoding ", "delimiter "))]
    notes_text = ("Notes: " + "; ".join(notes)) if notes else ""
    if len(notes_text) > 500:
        notes_text = notes_text[:499] + "…"
    rows = facts.head[:preview_rows]

    def render(ncols: int) -> str:
        more = len(columns) - ncols
        marker = f" … (+{more} more columns)" if more > 0 else ""
        lines = [
            head,
            "Columns: "
            + ", ".join(f"{c} ({t})" for c, t in zip(columns[:ncols], facts.types, strict=False))
            + marker,
        ]
        if facts.rows and ncols:
            tail = " | …" if more > 0 else ""
            lines.append(f"First {min(preview_rows, facts.rows)} rows:")
            lines.append("| " + " | ".join(_preview_cell(c) for c in columns[:ncols]) + tail + " |")
            for row in rows:
                cells = " | ".join(_preview_cell(v) for v in row[:ncols])
                lines.append(f"| {cells}" + tail + " |")
        if notes_text:
            lines.append(notes_text)
        return "\n".join(lines)

    ncols = len(columns)
    text = render(ncols)
    while len(text) > _SUMMARY_LIMIT and ncols > 1:
        ncols = max(1, min(ncols - 1, ncols * _SUMMARY_LIMIT // len(text)))
        text = render(ncols)
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


def text_summary(text: str, name: str, label: str) -> str:
    """A text file for the model: ``label``, its size, and an excerpt of the start."""
    lines = text.splitlines()
    excerpt = text.strip()[:600]
    more = "…" if len(text.strip()) > 600 else ""
    return f"{name}: {label}; {len(lines)} lines, {len(text)} characters\n{excerpt}{more}"


def image_summary(data: bytes, name: str, mime: str) -> str:
    """An image for the model: format, pixel size (PNG) and file size."""
    if mime == "image/png" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return f"{name}: PNG image, {width}×{height} px, {human_size(len(data))}"
    return f"{name}: {mime.split('/')[1].upper()} image, {human_size(len(data))}"
