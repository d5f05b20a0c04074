"""Plain text of a stored file, for file search: decoded text, PDF pages, a table as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from core.files.grid import Grid, read_grid
from core.files.sniff import decode_bytes


def pdf_pages(data: bytes, max_pages: int | None = None) -> list[str]:
    """The text of each page of a PDF (the first ``max_pages`` when given); "" for a page
    without a text layer. Raises the PDF library's errors for a damaged file."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")  # an empty user password only restricts printing
    return [page.extract_text() or "" for page in reader.pages[:max_pages]]


def grid_as_csv(grid: Grid) -> str:
    """The grid as comma-separated text, header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(grid.header)
    writer.writerows(grid.rows)
    return out.getvalue()


def extract_text(path: Path, kind: str) -> str:
    """Plain text of a stored file, for file search.

    text: decoded with :func:`decode_bytes`. pdf: the pages' text separated by form feeds
    (``\\f``), as ``pdftotext`` does. table: the loaded sheet as comma-separated text with the
    header first, whatever the original format. image and other kinds: ``""``.
    """
    data = Path(path).read_bytes()
    if kind == "pdf":
        return "\f".join(pdf_pages(data))
    if kind == "text":
        return decode_bytes(data)[0]
    if kind == "table":
        return grid_as_csv(read_grid(data, Path(path).name))
    return ""
