"""File intake: what a person attaches, checked, decoded and stored once.

One job per module, in the order a file meets them:

1. :mod:`core.files.sniff` decides what the bytes *are* (:func:`sniff_kind`, by magic numbers
   and then text decoding with :func:`decode_bytes`), not what the name says.
2. :mod:`core.files.grid` reads CSV/TSV/XLSX/XLS/JSON records into header and rows of cell
   text; :mod:`core.files.tables` turns that into a pandas DataFrame (:func:`load_table`) with
   common dirt cleaned and ``notes`` saying what was done.
3. :mod:`core.files.summary` writes the short text the model sees about a file
   (:func:`summarize`); for a CSV/TSV over 2 MB intake gets the same text from
   :mod:`core.files.scan`, which streams the file (one chunk of rows at a time, each column
   typed by :mod:`core.files.column`) instead of loading it; :mod:`core.files.text` gives
   file search a file's plain text (:func:`extract_text`, :func:`pdf_pages`).
4. :mod:`core.files.intake` (:class:`FileIntake`) stores the bytes content-addressed and one
   :class:`~core.domain.FileRef` row per thread.

:mod:`core.files.names` holds the safe display name, human-readable sizes and capped lists
for messages. Reading the bill
columns of a sales file is the book's job (:mod:`core.bills.sales_file`).
"""

import importlib
from typing import TYPE_CHECKING, Any

from core.files.grid import Grid, read_grid
from core.files.intake import FileIntake, OnIngested
from core.files.names import sanitize_name
from core.files.sniff import (
    MIME_CSV,
    MIME_JSON,
    MIME_MD,
    MIME_PDF,
    MIME_TEXT,
    MIME_TSV,
    MIME_XLS,
    MIME_XLSX,
    Kind,
    decode_bytes,
    sniff_kind,
)
from core.files.text import extract_text, pdf_pages

if TYPE_CHECKING:
    from core.files.summary import summarize
    from core.files.tables import LoadedTable, load_table

# The DataFrame side loads pandas; it is resolved on first use (PEP 562) so that importing
# core.files for intake or sniffing stays cheap.
_LAZY = {
    "summarize": "core.files.summary",
    "LoadedTable": "core.files.tables",
    "load_table": "core.files.tables",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MIME_CSV",
    "MIME_JSON",
    "MIME_MD",
    "MIME_PDF",
    "MIME_TEXT",
    "MIME_TSV",
    "MIME_XLS",
    "MIME_XLSX",
    "FileIntake",
    "Grid",
    "Kind",
    "LoadedTable",
    "OnIngested",
    "decode_bytes",
    "extract_text",
    "load_table",
    "pdf_pages",
    "read_grid",
    "sanitize_name",
    "sniff_kind",
    "summarize",
]
