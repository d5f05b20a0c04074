"""The summary of a table upload without holding the table: large CSV/TSV read as a stream.

Intake only needs what the model sees (format, encoding, delimiter, shape, column types, the
first rows, the cleaning notes), not the file as millions of Python strings. Small files and
workbooks go through the exact loader (:func:`~core.files.tables.load_table_bytes`); a CSV/TSV
above :data:`STREAM_ABOVE` bytes is decoded in pieces, split by the same ``csv`` reader and
typed chunk by chunk (:class:`~core.files.column.ColumnScan`) with the same rules, so the
summary says what loading the whole file would have said while memory stays about one chunk.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import re
import threading
from collections import Counter
from collections.abc import Iterator

from core.files.column import ColumnScan
from core.files.grid import (
    choose_delimiter,
    csv_notes,
    csv_rejected,
    delimiter_name,
    header_text,
    name_columns,
)
from core.files.sniff import MIME_CSV, MIME_TSV, SAMPLE, text_codec
from core.files.summary import TableFacts, summarize, table_summary
from core.files.tables import _MISSING, _MISSING_MAX, cleaning_notes, load_table_bytes

STREAM_ABOVE = 2 * 1024 * 1024
"""CSV/TSV uploads larger than this many bytes are summarised from a stream."""

_CHUNK_CELLS = 200_000  # cells per chunk: ~10-20 MB of strings whatever the width...
_CHUNK_ROWS = 256  # ...but never fewer rows: each column costs a pandas call per chunk


def summarize_bytes(data: bytes, name: str, mime: str, preview_rows: int) -> str:
    """The summary :func:`~core.files.summary.summarize` writes for the table in ``data``
    (already sniffed as ``mime``), in bounded memory for a large CSV/TSV."""
    if mime in (MIME_CSV, MIME_TSV) and len(data) > STREAM_ABOVE:
        return table_summary(scan_csv(data, name, preview_rows), name, preview_rows)
    return summarize(load_table_bytes(data, name), name, preview_rows)


class _Endings:
    """Counts line endings of the lines it passes on (``newline=""`` keeps them): for UTF-16
    and UTF-32, where the bytes cannot be counted directly."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.counts = [0, 0, 0]  # \r\n, lone \n, lone \r

    def __iter__(self) -> Iterator[str]:
        counts = self.counts
        for line in self.lines:
            if line.endswith("\n"):
                counts[0 if line.endswith("\r\n") else 1] += 1
            elif line.endswith("\r"):
                counts[2] += 1
            yield line


_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while rows stream through (about half the time of a
    1M-row scan otherwise goes to it: every row is a new list, none can be in a cycle).
    Counted, so scans in two threads at once turn it back on only when both are done."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def _byte_endings(codec: str) -> bool:
    """Whether line endings can be counted in the bytes: \\r and \\n are single bytes that no
    other character contains (UTF-8; GBK, Big5 and GB18030 trail bytes are above 0x2F; the
    Windows and ISO single-byte code pages)."""
    name = codecs.lookup(codec).name
    return name in _BYTE_ENDINGS or name.startswith(("cp125", "iso8859", "latin"))


_BYTE_ENDINGS = {"utf-8", "utf-8-sig", "gb18030", "gbk", "cp950", "big5hkscs", "ascii"}


def _text(data: bytes, codec: str, errors: str) -> io.TextIOWrapper:
    # BytesIO shares the bytes (no copy); the wrapper decodes ~8 KB at a time.
    return io.TextIOWrapper(io.BytesIO(data), encoding=codec, errors=errors, newline="")


def scan_csv(data: bytes, name: str | None, preview_rows: int) -> TableFacts:
    """What :func:`summarize` needs about a CSV/TSV, read once in chunks of rows.

    Same decoding, delimiter, blank-row, header and typing rules as the exact loader; raises
    the same :class:`~core.errors.FileRejected` for text the csv module cannot split.
    """
    codec, errors, encoding = text_codec(data)
    delimiter, score = choose_delimiter(_text(data, codec, errors).read(SAMPLE), name)
    lines = _text(data, codec, errors)
    counted = None if _byte_endings(codec) else _Endings(lines)
    reader = csv.reader(counted or lines, delimiter=delimiter)
    state = _Scan()
    try:
        with _collector_paused():
            state.read(reader, preview_rows)
    except csv.Error as exc:
        raise csv_rejected(name, exc) from exc
    if counted is not None:
        endings = (counted.counts[0], counted.counts[1], counted.counts[2])
    else:
        crlf = data.count(b"\r\n")
        endings = (crlf, data.count(b"\n") - crlf, data.count(b"\r") - crlf)
    notes = csv_notes(encoding, delimiter, endings, score)
    facts = state.facts(preview_rows)
    facts.where = [
        "TSV" if delimiter == "\t" else "CSV",
        f"encoding {encoding}",
        f"delimiter {delimiter_name(delimiter)}",
    ]
    facts.notes[:0] = notes
    return facts


# Every missing-value word starts with one of these (either case): a cheap first test.
_FIRST = {ch for word in _MISSING if word for ch in (word[0], word[0].upper())}
_EDGE_SPACE = re.compile(r"\0\s|\s\0")  # \s is exactly what str.strip() removes


def _cleaned(raw: tuple[str, ...]) -> tuple[list[str], set[str]]:
    """A column's cells stripped, and which distinct cells are missing ("", "N/A", "null"...).

    The common column (no padding, few missing words) costs a few C-speed passes: one regular
    expression over the joined cells instead of a strip per cell, and the missing test once per
    distinct value instead of once per cell."""
    if _EDGE_SPACE.search("\0" + "\0".join(raw) + "\0"):
        stripped = [v.strip() for v in raw]
    else:
        stripped = list(raw)
    gone = {
        u
        for u in set(stripped)
        if not u or (u[0] in _FIRST and len(u) <= _MISSING_MAX and u.lower() in _MISSING)
    }
    return stripped, gone


class _Scan:
    """The running state of one pass: header, row count, head rows, one ColumnScan a column."""

    def __init__(self) -> None:
        self.header: list[str] | None = None
        self.rows = 0
        self.blank_inside = 0
        self.head: list[list[str | None]] = []
        self.columns: list[ColumnScan] = []

    def read(self, reader: Iterator[list[str]], preview_rows: int) -> None:
        """Consume every row: the first non-blank one is the header, blank rows are skipped."""
        for row in reader:
            # "".join(...).strip() is the cheap test for a blank row, as in the exact reader;
            # blank rows before the header are not "inside" the table.
            if "".join(row).strip() != "":
                self.header = row
                break
        else:
            return
        limit = max(min(_CHUNK_ROWS, _CHUNK_CELLS), _CHUNK_CELLS // max(1, len(self.header)))
        chunk: list[list[str]] = []
        append = chunk.append
        blank = 0
        for row in reader:
            # A first cell with text settles it without joining the row.
            if not (row and row[0] and not row[0].isspace()) and "".join(row).strip() == "":
                blank += 1
                continue
            if blank:
                self.blank_inside += blank
                blank = 0
            append(row)
            if len(chunk) >= limit:
                self._chunk(chunk, preview_rows)
                chunk = []
                append = chunk.append
        if chunk:
            self._chunk(chunk, preview_rows)

    def _chunk(self, rows: list[list[str]], preview_rows: int) -> None:
        width = max(len(r) for r in rows)
        while len(self.columns) < width:
            # A column that first appears now was empty ("" padding) in every earlier row.
            scan = ColumnScan()
            scan.missing = self.rows > 0
            self.columns.append(scan)
        width = len(self.columns)
        if any(len(r) != width for r in rows):
            rows = [r + [""] * (width - len(r)) for r in rows]
        head_cells = []
        need = preview_rows - len(self.head)
        for index, raw in enumerate(zip(*rows, strict=True)):
            scan = self.columns[index]
            stripped, gone = _cleaned(raw)
            if not scan.nonblank:
                # Some cell has text ("N/A" counts: it is missing, but the column stays).
                scan.nonblank = any(stripped)
            if gone:
                present = [c for c in stripped if c not in gone]
                words = [c for c in stripped if c in gone and c] if gone != {""} else []
            else:
                present, words = stripped, []
            scan.feed(present, words, missing=len(present) < len(stripped))
            if need > 0:
                head_cells.append([None if c in gone else c for c in stripped[:need]])
        if need > 0:
            self.head.extend(list(r) for r in zip(*head_cells, strict=True))
        self.rows += len(rows)

    def facts(self, preview_rows: int) -> TableFacts:
        """The summary's facts once every row is in; header cleaned as the exact reader does."""
        if self.header is None:
            facts = TableFacts(where=[], rows=0, columns=[], types=[], head=[], notes=[])
            facts.notes.append("no header and no data")
            return facts
        for scan in self.columns:
            scan.finish()
        width = max(len(self.header), len(self.columns))
        while len(self.columns) < width:
            self.columns.append(ColumnScan())  # header-only columns: no cells at all
        header = [header_text(h) for h in self.header] + [""] * (width - len(self.header))
        keep = [i for i in range(width) if header[i] or self.columns[i].nonblank]
        notes = [f"{self.blank_inside} empty rows skipped"] if self.blank_inside else []
        if width - len(keep):
            notes.append(f"{width - len(keep)} empty columns dropped")
        names, named = name_columns([header[i] for i in keep])
        notes.extend(named)
        scans = [self.columns[i] for i in keep]
        notes.extend(_type_notes(names, scans))
        if not self.rows:
            notes.append("header only, no data rows")
        head = []
        for row in self.head[:preview_rows]:
            padded = row + [None] * (width - len(row))
            head.append([scan.value(padded[i]) for i, scan in zip(keep, scans, strict=True)])
        return TableFacts(
            where=[],
            rows=self.rows,
            columns=names,
            types=[scan.kind() for scan in scans],
            head=head,
            notes=notes,
        )


def _type_notes(names: list[str], scans: list[ColumnScan]) -> list[str]:
    """The typing notes of :func:`core.files.tables._to_frame`, in its order and words."""
    flagged: dict[str, list[str]] = {"thousands": [], "currency": [], "zeros": [], "formula": []}
    tokens: Counter[str] = Counter()
    for name, scan in zip(names, scans, strict=True):
        tokens.update(scan.tokens)  # column order, as the whole-table loop counts them
        for flag, on in scan.note_flags().items():
            if on:
                flagged[flag].append(name)
    return cleaning_notes(flagged, tokens)
