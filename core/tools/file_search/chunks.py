"""Passages: a file's text cut into overlapping, citable pieces ("lines 3-9", "row 4", "page 2").

Passages are about 500-800 characters and overlap a little, so a sentence cut at a boundary is
whole in one of them; each remembers where it came from so an answer can cite file and location.
:func:`passages_for` reads a stored file (text through intake's decoding, PDF through intake's
page reader) and picks the cutting for its kind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.domain import FileRef

log = logging.getLogger(__name__)

# Passage size in characters: long enough to hold an answer with its context, short enough
# that 20 of them fit comfortably in a model's context.
CHUNK_TARGET = 600
CHUNK_MAX = 800
CHUNK_OVERLAP = 120
# Bounds on what one file may put into the index; the rest is not searchable (logged).
MAX_INDEX_CHARS = 2_000_000
MAX_PDF_PAGES = 1000

_TABLE_SUFFIXES = {".csv", ".tsv"}
_TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".log", ".text"}


def decode_text(data: bytes) -> str:
    """Bytes of a text file as str, with the same detection as file intake (BOMs, strict
    UTF-8, GBK/GB18030 vs Big5, then charset-normalizer); undecodable bytes are replaced
    rather than refused, since intake has already accepted the file."""
    from core.errors import FileRejected
    from core.files.sniff import decode_bytes

    try:
        return decode_bytes(data)[0]
    except FileRejected:
        return data.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Passage:
    """One indexed passage: its text and where it is in the file ("lines 3-9", "page 2")."""

    location: str
    text: str


def _split_long(line: str) -> list[str]:
    """A line longer than a passage, cut at a sentence end or space near the limit."""
    pieces: list[str] = []
    while len(line) > CHUNK_MAX:
        window = line[:CHUNK_MAX]
        cut = max(window.rfind(p, CHUNK_TARGET // 2) for p in "。！？；.!?;")
        if cut < 0:
            cut = window.rfind(" ", CHUNK_TARGET // 2)
        cut = CHUNK_MAX if cut < 0 else cut + 1
        pieces.append(line[:cut].strip())
        line = line[cut:].strip()
    if line:
        pieces.append(line)
    return pieces


def chunk_lines(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """Pack numbered lines into passages of about CHUNK_TARGET..CHUNK_MAX characters.

    Returns ``(first_line, last_line, text)`` with 1-based line numbers. Blank lines are
    skipped; a passage starts with the last line(s) of the previous one (up to CHUNK_OVERLAP
    characters) so a sentence cut at a boundary is still whole in one of them.
    """
    pieces = [
        (number, piece)
        for number, line in enumerate(lines, 1)
        if line.strip()
        for piece in _split_long(line.rstrip())
    ]
    chunks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for number, piece in pieces:
        if current and (size >= CHUNK_TARGET or size + len(piece) + 1 > CHUNK_MAX):
            chunks.append(current)
            tail: list[tuple[int, str]] = []
            tail_size = 0
            for prev in reversed(current):
                if tail_size + len(prev[1]) + 1 > CHUNK_OVERLAP:
                    break
                tail.insert(0, prev)
                tail_size += len(prev[1]) + 1
            if tail_size + len(piece) + 1 > CHUNK_MAX:
                tail, tail_size = [], 0
            current, size = tail, tail_size
        current.append((number, piece))
        size += len(piece) + 1
    if current:
        chunks.append(current)
    return [(c[0][0], c[-1][0], "\n".join(p for _, p in c)) for c in chunks]


def _span(word: str, first: int, last: int) -> str:
    return f"{word} {first}" if first == last else f"{word}s {first}-{last}"


def text_passages(text: str) -> list[Passage]:
    """Passages of plain text, located by line numbers."""
    return [
        Passage(_span("line", first, last), body)
        for first, last, body in chunk_lines(text.splitlines())
    ]


def table_passages(text: str) -> list[Passage]:
    """Passages of a CSV/TSV file, located by data row (row 1 is the line after the header).

    Every passage after the first starts with the header line, so a passage about row 40 still
    says which column is the price. Rows are counted as lines (quoted multi-line cells shift
    the count; sales exports do not have them).
    """
    lines = text.splitlines()
    if not lines:
        return []
    header, rows = lines[0], lines[1:]
    if not any(r.strip() for r in rows):
        return [Passage("header", header)] if header.strip() else []
    passages = []
    for first, last, body in chunk_lines(rows):
        passages.append(Passage(_span("row", first, last), f"{header}\n{body}"))
    return passages


def page_passages(pages: Iterable[str]) -> list[Passage]:
    """Passages of paged text (PDF), located by 1-based page; passages never span pages."""
    return [
        Passage(f"page {number}", body)
        for number, page in enumerate(pages, 1)
        for _first, _last, body in chunk_lines(page.splitlines())
    ]


def _is_table(ref: FileRef) -> bool:
    return Path(ref.name).suffix.lower() in _TABLE_SUFFIXES or ref.mime in (
        "text/csv",
        "text/tab-separated-values",
    )


def _is_pdf(ref: FileRef) -> bool:
    return ref.kind == "pdf" or ref.mime == "application/pdf"


def _looks_textual(ref: FileRef) -> bool:
    return (
        ref.kind == "text"
        or ref.mime.startswith("text/")
        or Path(ref.name).suffix.lower() in _TEXT_SUFFIXES
    )


def _truncate(text: str, name: str) -> str:
    if len(text) > MAX_INDEX_CHARS:
        log.warning(
            "file_search: %s has %d characters; indexing the first %d",
            name,
            len(text),
            MAX_INDEX_CHARS,
        )
        return text[:MAX_INDEX_CHARS]
    return text


def passages_for(ref: FileRef, text: str | None = None) -> list[Passage]:
    """The passages of a file: from ``text`` when given, else read from ``ref.path``.

    Reads txt/md/csv (any encoding, see :func:`decode_text`) and PDF (per page). Images and
    binary files (spreadsheets) have no passages. Given ``text`` for a PDF may separate pages
    with form feeds, as ``pdftotext`` does. Raises OSError or the PDF library's error when the
    file cannot be read; :func:`~core.tools.file_search.index.index_file` records those.
    """
    if text is not None:
        text = _truncate(text, ref.name)
        if _is_pdf(ref):
            return page_passages(text.split("\f"))
        return table_passages(text) if _is_table(ref) else text_passages(text)
    if ref.kind == "image":
        return []
    # Imported here: core.files loads pandas, which a text-only search never needs.
    from core.files.text import pdf_pages

    data = Path(ref.path).read_bytes()
    if _is_pdf(ref) or data.startswith(b"%PDF-"):
        return page_passages(pdf_pages(data, MAX_PDF_PAGES))
    # NUL bytes or a zip container (xlsx, docx): not text, whatever the name says.
    if b"\x00" in data[:8192] or data.startswith(b"PK\x03\x04"):
        return []
    if not (_looks_textual(ref) or ref.kind == "table"):
        return []
    decoded = _truncate(decode_text(data), ref.name)
    return table_passages(decoded) if _is_table(ref) else text_passages(decoded)
