"""File intake: what a person attaches, checked, decoded and stored once.

Four jobs, in the order a file meets them:

1. :func:`sniff_kind` decides what the bytes *are* (magic numbers, then text decoding), not what
   the name says. A PNG or an executable renamed ``.csv`` is refused; a CSV saved as ``.xls``
   by a web export is read as the CSV it is.
2. :func:`load_table` turns CSV/TSV/XLSX/XLS/JSON records into a pandas DataFrame with the
   encoding, delimiter and sheet detected and common dirt cleaned (thousands separators, "N/A",
   odd headers); ``notes`` tells the model what was done so its own code can do the same.
3. :class:`FileIntake` stores the bytes content-addressed (``files/<sha[:2]>/<sha>``) and one
   :class:`~core.domain.FileRef` row per thread, with a short :func:`summarize` for the model.
4. :func:`read_sales_items` reads the four bill columns (name, quantity, unit cost, unit price)
   in Chinese or English for the model-free ``/bill`` command, as exact Decimals.

Everything here is synchronous except :meth:`FileIntake.ingest`, which runs the parsing in a
worker thread so a 50 MB upload does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import struct
import tempfile
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.config import Settings
from core.domain import FileRef, new_id
from core.errors import FileRejected
from core.store import Store

log = logging.getLogger(__name__)

Kind = Literal["table", "text", "pdf", "image"]
OnIngested = Callable[[FileRef], Awaitable[None]]

MIME_CSV = "text/csv"
MIME_TSV = "text/tab-separated-values"
MIME_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIME_XLS = "application/vnd.ms-excel"
MIME_JSON = "application/json"
MIME_PDF = "application/pdf"
MIME_TEXT = "text/plain"
MIME_MD = "text/markdown"

# What each extension promises. Content wins, but a binary format under a name that promises
# something else (a PNG called sales.csv) is almost always the wrong attachment: refuse it.
_TABLE_EXT = {".csv", ".tsv", ".tab", ".xlsx", ".xlsm", ".xls"}
_TEXT_EXT = {".txt", ".md", ".markdown", ".json", ".jsonl", ".log", ".text"}
_PDF_EXT = {".pdf"}
_IMAGE_EXT = {".png", ".jpg", ".jpeg"}
_EXT_FAMILY = {
    **{e: "table" for e in _TABLE_EXT},
    **{e: "text" for e in _TEXT_EXT},
    **{e: "pdf" for e in _PDF_EXT},
    **{e: "image" for e in _IMAGE_EXT},
}

_ACCEPTED_EN = "CSV, TSV, Excel (.xlsx/.xls), JSON, TXT, Markdown, PDF, PNG or JPEG"
_ACCEPTED_ZH = "CSV、TSV、Excel（.xlsx/.xls）、JSON、TXT、Markdown、PDF、PNG 或 JPEG"

# Magic numbers of formats that are never data for us; named so the refusal can say what it is.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "a Linux executable"),
    (b"\xcf\xfa\xed\xfe", "a macOS executable"),
    (b"\xce\xfa\xed\xfe", "a macOS executable"),
    (b"\xca\xfe\xba\xbe", "a macOS executable or Java class"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF media file (WebP/WAV/AVI)"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_SAMPLE = 64 * 1024
# A zip whose members inflate past this many times the upload limit is treated as a zip bomb.
_MAX_ZIP_RATIO = 20
_MAX_PREVIEW_CELL = 24
_SUMMARY_LIMIT = 2000


# --- sizes and names -----------------------------------------------------------------------


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


_UNSAFE_NAME = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')


def sanitize_name(name: str) -> str:
    """A display and sandbox file name: no folders, no leading dots, no control characters.

    Chinese and other letters are kept (NFC-normalised so the same name typed on macOS and
    Windows compares equal). ``"../../etc/passwd.csv"`` becomes ``"passwd.csv"``.
    """
    name = unicodedata.normalize("NFC", name or "")
    # Both separators: a Windows client may send "C:\\Users\\me\\sales.csv".
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip()
    name = name.lstrip(". ").rstrip(". ")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:200]
    return name or "file"


def _ext(name: str | None) -> str:
    return PurePosixPath(sanitize_name(name or "")).suffix.lower()


# --- text decoding -------------------------------------------------------------------------


def _gb_common(ch: str) -> bool:
    try:
        return bool(ch.encode("gb2312"))
    except UnicodeEncodeError:
        return False


def _big5_common(ch: str) -> bool:
    # Big5 lead bytes A1-A3 are punctuation, A4-C6 the 5,401 frequently used characters.
    try:
        raw = ch.encode("big5")
    except UnicodeEncodeError:
        return False
    return len(raw) == 2 and 0xA1 <= raw[0] <= 0xC6


def _score(text: str, common: Callable[[str], bool]) -> float:
    wide = [ch for ch in text if ord(ch) > 0x7F]
    if not wide:
        return 0.0
    return sum(1 for ch in wide if common(ch)) / len(wide)


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _sample(data: bytes) -> bytes:
    """The first ~64 KB cut at a line end, so a multi-byte character is never split."""
    if len(data) <= _SAMPLE:
        return data
    cut = data.rfind(b"\n", 0, _SAMPLE)
    return data[: cut + 1] if cut > 0 else data[:_SAMPLE]


def _chinese(sample: bytes) -> str | None:
    """GB18030 or Big5 for Chinese bytes, else None.

    charset-normalizer guesses Korean (cp949) for a short GBK CSV, so Chinese is decided here:
    both codecs accept most double-byte sequences, but the right one turns real text into
    *common* characters (GB2312 for simplified, Big5's frequent block for traditional) while the
    wrong one yields rare characters and private-use code points. A file of only two or three
    characters can read plausibly both ways; ties go to GB, the likelier writer for this bot.
    """
    gb = _strict(sample, "gb18030")
    big5 = _strict(sample, "cp950")
    gb_score = _score(gb, _gb_common) if gb is not None else -1.0
    big5_score = _score(big5, _big5_common) if big5 is not None else -1.0
    if big5 is not None and big5_score >= 0.6 and big5_score > gb_score:
        return "big5"
    if gb is not None and (gb_score >= 0.5 or big5 is None):
        # gb18030 decodes almost anything with high bytes; demand some plausibility unless it
        # is the only candidate and has 4-byte sequences (GB18030-only characters).
        if gb_score >= 0.5 or re.search(rb"[\x81-\xfe][\x30-\x39][\x81-\xfe][\x30-\x39]", sample):
            return "gb18030"
    return None


def _binary_reason(data: bytes) -> str | None:
    head = data[:8192]
    if b"\x00" in head:
        even = head[0::2].count(0)
        odd = head[1::2].count(0)
        if max(even, odd) > len(head) // 4 and min(even, odd) < len(head) // 50 + 1:
            return "utf16"
        return "binary"
    controls = sum(1 for b in head if b < 0x20 and b not in (9, 10, 12, 13, 27))
    if controls > max(2, len(head) // 100):
        return "binary"
    return None


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode text bytes; returns ``(text, encoding)``.

    Order, cheapest and surest first: a byte-order mark (UTF-8, UTF-16, UTF-32), strict UTF-8,
    Chinese (GBK/GB18030 or Big5, see :func:`_chinese`), then charset-normalizer for the rest
    (Latin-1 and friends). The encoding reported for GB text is ``gbk`` when every byte is
    valid GBK (what Excel on Chinese Windows writes) and ``gb18030`` when it needs the superset;
    decoding always uses gb18030. Raises :class:`FileRejected` for bytes that are not text.
    """
    boms = (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    )
    for bom, encoding in boms:
        if data.startswith(bom):
            text = _strict(data, encoding)
            if text is None:
                raise FileRejected(
                    f"The file starts with a {encoding} byte-order mark but is not valid {encoding}.",
                    zh=f"文件以 {encoding} 字节序标记开头，但内容不是有效的 {encoding}。",
                )
            return text, encoding
    reason = _binary_reason(data)
    if reason == "utf16":
        raise FileRejected(
            "This looks like UTF-16 text without a byte-order mark; save it as UTF-8 CSV "
            "(in Excel: Save As → CSV UTF-8) and send it again.",
            zh="这似乎是没有字节序标记（BOM）的 UTF-16 文本；请另存为 UTF-8 CSV"
            "（Excel：另存为 → CSV UTF-8）后重新发送。",
        )
    if reason == "binary":
        raise FileRejected(
            f"This is binary data, not text. Send one of: {_ACCEPTED_EN}.",
            zh=f"这是二进制数据，不是文本。请发送以下格式之一：{_ACCEPTED_ZH}。",
        )
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    chinese = _chinese(_sample(data))
    if chinese == "big5":
        text = _strict(data, "cp950") or data.decode("big5hkscs", errors="replace")
        return text, "big5"
    if chinese == "gb18030":
        text = _strict(data, "gb18030")
        if text is not None:
            return text, ("gbk" if _strict(data, "gbk") is not None else "gb18030")
        gbk = _strict(data, "gbk")  # 0x80 (euro sign) is cp936/gbk, not gb18030
        if gbk is not None:
            return gbk, "gbk"
    from charset_normalizer import from_bytes

    best = from_bytes(_sample(data)).best()
    if best is None:
        raise FileRejected(
            f"Cannot tell the text encoding of this file. Save it as UTF-8 and send it again "
            f"({_ACCEPTED_EN}).",
            zh=f"无法识别此文件的文字编码。请另存为 UTF-8 后重新发送（{_ACCEPTED_ZH}）。",
        )
    encoding = best.encoding
    # cp1250 and cp1252 agree on the usual accents; Western Europe is the likelier writer.
    if encoding in ("cp1250", "latin_1", "iso8859_2") and _strict(data, "cp1252") is not None:
        encoding = "cp1252"
    text = _strict(data, encoding)
    if text is None:
        text = data.decode(encoding, errors="replace")
    return text, encoding.replace("_", "-")


# --- sniffing ------------------------------------------------------------------------------


def _reject_mismatch(name: str, actual: str, actual_zh: str) -> FileRejected:
    return FileRejected(
        f"{name} is {actual}, not what its name says. Send the file itself ({_ACCEPTED_EN}).",
        zh=f"{name} 实际上是{actual_zh}，与文件名不符。请发送原始文件（{_ACCEPTED_ZH}）。",
    )


def _zip_kind(data: bytes, name: str) -> tuple[Kind, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            inflated = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise FileRejected(
            f"{name} is a damaged zip/Excel file ({exc}).",
            zh=f"{name} 是损坏的 zip/Excel 文件（{exc}）。",
        ) from exc
    if "xl/workbook.xml" not in names:
        raise FileRejected(
            f"{name} is a zip archive, not an Excel workbook. Unzip it and send the CSV or "
            f"Excel file inside.",
            zh=f"{name} 是 zip 压缩包，不是 Excel 工作簿。请解压后发送其中的 CSV 或 Excel 文件。",
        )
    if inflated > _MAX_ZIP_RATIO * max(len(data), 1) and inflated > 200 * 1024 * 1024:
        raise FileRejected(
            f"{name} unpacks to {_human(inflated)}, too large to open safely.",
            zh=f"{name} 解压后有 {_human(inflated)}，太大，无法安全打开。",
        )
    return "table", MIME_XLSX


def _ole_kind(data: bytes, name: str) -> tuple[Kind, str]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        book.release_resources()
    except Exception as exc:  # xlrd raises bare XLRDError / CompDocError / struct.error
        raise FileRejected(
            f"{name} is an old Office file that is not an Excel workbook (or is damaged or "
            f"password-protected): {exc}. Save it as .xlsx or CSV.",
            zh=f"{name} 是旧版 Office 文件，但不是可读取的 Excel 工作簿（可能已损坏或加密）：{exc}。"
            "请另存为 .xlsx 或 CSV。",
        ) from exc
    return "table", MIME_XLS


def _pdf_check(data: bytes, name: str) -> None:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRejected(
                f"{name} is a password-protected PDF; send it without the password.",
                zh=f"{name} 是加密的 PDF；请去掉密码后再发送。",
            )
        _ = len(reader.pages)
    except FileRejected:
        raise
    except Exception as exc:  # pypdf's errors are many and not one hierarchy
        raise FileRejected(
            f"{name} is a damaged PDF ({exc}).", zh=f"{name} 是损坏的 PDF（{exc}）。"
        ) from exc


def _json_tabular(value: Any) -> list[dict[str, Any]] | None:
    """Records when the JSON is a table: a list of objects, or one key holding such a list."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return None


def _delimiter_scores(text: str) -> dict[str, float]:
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
    if len(lines) > 1 and not text.endswith(("\n", "\r")) and len(text) >= _SAMPLE:
        lines = lines[:-1]  # the sample's last line may be cut
    scores: dict[str, float] = {}
    for delim in (",", "\t", ";", "|"):
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delim) if r]
        except csv.Error:
            continue
        if not counts:
            continue
        mode, hits = Counter(counts).most_common(1)[0]
        scores[delim] = hits / len(counts) if mode > 1 else 0.0
    return scores


def _looks_tabular(text: str) -> bool:
    """Text that is a delimited table: several rows, all with the same 2+ fields."""
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
    if len(lines) < 3:
        return False
    scores = _delimiter_scores(text[:_SAMPLE])
    return max(scores.values(), default=0.0) >= 0.95


def sniff_kind(data: bytes, name: str) -> tuple[Kind, str]:
    """What the bytes are: ``(kind, mime)``. Raises :class:`FileRejected` for anything else.

    Decided by content: PDF, PNG, JPEG, XLSX (a zip with ``xl/workbook.xml``), XLS (an OLE2
    file xlrd can open), JSON, and text (CSV/TSV when the name says so or the lines have a
    consistent delimiter; Markdown; plain text). A binary format under a name promising another
    one (a PNG called ``sales.csv``) is refused rather than guessed at.
    """
    name = sanitize_name(name)
    if not data:
        raise FileRejected(f"{name} is empty.", zh=f"{name} 是空文件。")
    ext = _ext(name)
    family = _EXT_FAMILY.get(ext)
    head = data[:16]
    # PDF readers accept a header anywhere in the first KB, but only leading whitespace is
    # tolerated here: a note that merely mentions "%PDF-" must stay a note.
    if data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x00").startswith(b"%PDF-"):
        if family not in (None, "pdf"):
            raise _reject_mismatch(name, "a PDF document", "PDF 文档")
        _pdf_check(data, name)
        return "pdf", MIME_PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff"):
        png = head.startswith(b"\x89PNG")
        if family not in (None, "image"):
            what = "a PNG image" if png else "a JPEG image"
            raise _reject_mismatch(name, what, "PNG 图片" if png else "JPEG 图片")
        return "image", "image/png" if png else "image/jpeg"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        kind, mime = _zip_kind(data, name)
        if family not in (None, "table"):
            raise _reject_mismatch(name, "an Excel workbook", "Excel 工作簿")
        return kind, mime
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        kind, mime = _ole_kind(data, name)
        if family not in (None, "table"):
            raise _reject_mismatch(name, "an Excel workbook", "Excel 工作簿")
        return kind, mime
    for magic, what in _FOREIGN_MAGIC:
        if head.startswith(magic):
            raise FileRejected(
                f"{name} is {what}, which tallybot does not read. Send one of: {_ACCEPTED_EN}.",
                zh=f"{name} 是不支持的文件类型（{what}）。请发送以下格式之一：{_ACCEPTED_ZH}。",
            )
    try:
        text, _encoding = decode_bytes(data)
    except FileRejected as exc:
        # Name the file in the message; the decoder does not know it.
        raise FileRejected(f"{name}: {exc.message}", zh=f"{name}：{exc.zh}") from exc
    if family in ("pdf", "image") or ext in (".xlsx", ".xlsm"):
        raise FileRejected(
            f"{name} is plain text, not a valid {ext.lstrip('.').upper()} file.",
            zh=f"{name} 是纯文本，不是有效的 {ext.lstrip('.').upper()} 文件。",
        )
    stripped = text.lstrip("\ufeff \t\r\n")
    if ext == ".json" or (ext not in _TABLE_EXT and stripped[:1] in ("[", "{")):
        try:
            value = json.loads(stripped)
        except ValueError:
            if ext == ".json":
                raise FileRejected(
                    f"{name} is not valid JSON.", zh=f"{name} 不是有效的 JSON。"
                ) from None
        else:
            return ("table" if _json_tabular(value) is not None else "text"), MIME_JSON
    if ext in (".md", ".markdown"):
        return "text", MIME_MD
    if ext in _TABLE_EXT and re.match(r"(?is)<(!doctype html|html|table|\?xml)", stripped):
        # Web "exports" often save an HTML or XML page as report.xls.
        raise FileRejected(
            f"{name} is a web page (HTML/XML) saved with a spreadsheet name. Open it in Excel "
            "and save it as .xlsx or CSV.",
            zh=f"{name} 是以表格文件名保存的网页（HTML/XML）。请用 Excel 打开后另存为 .xlsx 或 CSV。",
        )
    if ext in _TABLE_EXT or (ext not in _TEXT_EXT and _looks_tabular(text)):
        return "table", MIME_TSV if ext in (".tsv", ".tab") else MIME_CSV
    if (
        ext == ".txt"
        and _looks_tabular(text)
        and _delimiter_scores(text[:_SAMPLE]).get("\t", 0) >= 0.95
    ):
        # Excel's "Unicode Text" export is a tab-separated table named .txt; other .txt files
        # stay text, since prose with commas can look regular over a few lines.
        return "table", MIME_TSV
    return "text", MIME_TEXT


# --- the grid: cells as text, before any conversion ----------------------------------------


@dataclass(slots=True)
class _Grid:
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


def _grid_from_rows(raw: Sequence[Sequence[str]], fmt: str, first_row: int = 1) -> _Grid:
    """Split header from data: the first non-empty row is the header; blank rows are dropped."""
    # "".join(...).strip() is the cheap test for a blank row: this runs once per row.
    blank = ["".join(r).strip() == "" for r in raw]
    keep = [i for i, b in enumerate(blank) if not b]
    if not keep:
        return _Grid(header=[], rows=[], row_numbers=[], format=fmt)
    first, last = keep[0], keep[-1]
    blank_inside = sum(blank[first:last])
    grid = _Grid(
        header=list(raw[first]),
        rows=[list(raw[i]) for i in keep[1:]],
        row_numbers=[first_row + i for i in keep[1:]],
        format=fmt,
    )
    if blank_inside:
        grid.notes.append(f"{blank_inside} empty rows skipped")
    return grid


def _grid_csv(text: str, name: str | None, encoding: str) -> _Grid:
    sample = text[:_SAMPLE]
    scores = _delimiter_scores(sample)
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
    if _ext(name) in (".tsv", ".tab") and scores.get("\t", 0.0) > 0:
        delimiter = "\t"
    try:
        raw = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise FileRejected(
            f"Cannot parse {name or 'the file'} as CSV: {exc} (an unclosed quote, or a cell "
            "over 128 KB).",
            zh=f"无法按 CSV 解析 {name or '该文件'}：{exc}（可能有未闭合的引号，或单元格超过 128 KB）。",
        ) from exc
    grid = _grid_from_rows(raw, "TSV" if delimiter == "\t" else "CSV")
    grid.encoding = encoding
    grid.delimiter = delimiter
    notes = [f"encoding {encoding.upper()}", f"delimiter {_delim_name(delimiter)}"]
    crlf = text.count("\r\n")
    lone_lf = text.count("\n") - crlf
    lone_cr = text.count("\r") - crlf
    if sum(1 for c in (crlf, lone_lf, lone_cr) if c) > 1:
        notes.append("mixed line endings (\\r\\n, \\n, \\r) read as one")
    if best[1] == 0:
        notes.append("a single column (no delimiter found)")
    grid.notes[:0] = notes
    return grid


def _delim_name(delimiter: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}.get(
        delimiter, repr(delimiter)
    )


def _grid_xlsx(data: bytes) -> _Grid:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, zip errors...
        raise FileRejected(
            f"Cannot open the Excel workbook: {exc}", zh=f"无法打开 Excel 工作簿：{exc}"
        ) from exc
    try:
        sheets = list(book.sheetnames)
        for ws in book.worksheets:
            # Other writers leave a wrong <dimension>; without this read-only mode truncates.
            ws.reset_dimensions()
            rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
            grid = _grid_from_rows(rows, "XLSX")
            if grid.header:
                return _sheet_notes(grid, ws.title, sheets)
    finally:
        book.close()
    return _Grid(header=[], rows=[], row_numbers=[], format="XLSX", sheets=sheets)


def _grid_xls(data: bytes) -> _Grid:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:
        raise FileRejected(
            f"Cannot open the Excel workbook: {exc}", zh=f"无法打开 Excel 工作簿：{exc}"
        ) from exc
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
                return _sheet_notes(grid, title, sheets)
    finally:
        book.release_resources()
    return _Grid(header=[], rows=[], row_numbers=[], format="XLS", sheets=sheets)


def _sheet_notes(grid: _Grid, title: str, sheets: list[str]) -> _Grid:
    grid.sheet = title
    grid.sheets = sheets
    if len(sheets) > 1:
        skipped = sheets[: sheets.index(title)]
        note = f"sheet {title!r} of {sheets}"
        if skipped:
            note += f" (the first non-empty one; {skipped} empty)"
        grid.notes.insert(0, note)
    return grid


def _grid_json(text: str) -> _Grid:
    # Numbers as their original text: "3.10" stays "3.10" and becomes Decimal("3.10") later.
    value = json.loads(text.lstrip("\ufeff"), parse_float=str, parse_int=str)
    records = _json_tabular(value)
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


def _read_grid(data: bytes, name: str | None) -> _Grid:
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


def _clean_header(grid: _Grid) -> None:
    """Trim headers, drop BOM remnants, name empty ones, make duplicates unique."""
    width = max([len(grid.header), *(len(r) for r in grid.rows)], default=0)
    header = [_INVISIBLE.sub(" ", h).strip() for h in grid.header]
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
    notes = []
    if dropped:
        notes.append(f"{dropped} empty columns dropped")
    unnamed = [i for i, h in enumerate(header) if not h]
    for i in unnamed:
        header[i] = f"column_{i + 1}"
    if unnamed:
        notes.append(f"empty headers named {[header[i] for i in unnamed]}")
    seen: Counter[str] = Counter()
    renamed = []
    for i, h in enumerate(header):
        seen[h] += 1
        if seen[h] > 1:
            new = f"{h}_{seen[h]}"
            while new in header:
                new += "_"
            renamed.append(f"{h!r} -> {new!r}")
            header[i] = new
    if renamed:
        notes.append(f"duplicate headers renamed: {', '.join(renamed)}")
    grid.header, grid.rows = header, rows
    grid.notes.extend(notes)


# --- cleaning into a DataFrame -------------------------------------------------------------

_MISSING = {"", "n/a", "#n/a", "nan", "null", "none", "-", "--", "—", "#null!"}
_PLAIN_NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_CURRENCY = re.compile(r"^([+-]?)[¥￥$€£]\s*")


def _number_text(cell: str) -> tuple[str | None, bool, bool]:
    """``(plain number text or None, had thousands separators, had a currency sign)``."""
    s = cell.strip()
    currency = False
    m = _CURRENCY.match(s)
    if m:
        s = m.group(1) + s[m.end() :]
        currency = True
    if _PLAIN_NUM.match(s):
        return s, False, currency
    if _THOUSANDS.match(s):
        return s.replace(",", ""), True, currency
    return None, False, currency


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


def _to_frame(grid: _Grid) -> tuple[pd.DataFrame, list[str]]:
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
    if flagged["thousands"]:
        notes.append(f"thousands separators removed in columns {flagged['thousands']}")
    if flagged["currency"]:
        notes.append(f"currency signs removed in columns {flagged['currency']}")
    if missing_tokens:
        total = sum(missing_tokens.values())
        shown = ", ".join(repr(t) for t, _ in missing_tokens.most_common(5))
        notes.append(f"{total} cells like {shown} treated as missing")
    if flagged["zeros"]:
        notes.append(f"columns {flagged['zeros']} kept as text (leading zeros)")
    if flagged["formula"]:
        notes.append(
            f"formula-like cells (starting with '=') in columns {flagged['formula']} kept as "
            "plain text, not evaluated"
        )
    return df, notes


def _load_table_bytes(data: bytes, name: str | None) -> LoadedTable:
    grid = _read_grid(data, name)
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
    return _load_table_bytes(Path(path).read_bytes(), name or Path(path).name)


# --- summaries -----------------------------------------------------------------------------


def _dtype_name(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "text"


def _preview_cell(value: Any) -> str:
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
        where.append(f"delimiter {_delim_name(table.delimiter)}")
    if table.sheet:
        where.append(f"sheet {table.sheet!r}")
    head = f"{name}: {', '.join(where)}; {len(df)} rows × {len(df.columns)} columns"
    notes = [n for n in table.notes if not n.startswith(("encoding ", "delimiter "))]
    notes_text = ("Notes: " + "; ".join(notes)) if notes else ""
    if len(notes_text) > 500:
        notes_text = notes_text[:499] + "…"

    def render(ncols: int) -> str:
        cols = list(df.columns[:ncols])
        more = len(df.columns) - ncols
        marker = f" … (+{more} more columns)" if more > 0 else ""
        lines = [
            head,
            "Columns: " + ", ".join(f"{c} ({_dtype_name(df[c])})" for c in cols) + marker,
        ]
        if len(df) and cols:
            lines.append(f"First {min(preview_rows, len(df))} rows:")
            lines.append(
                "| "
                + " | ".join(_preview_cell(c) for c in cols)
                + (" | …" if more > 0 else "")
                + " |"
            )
            for row in df[cols].head(preview_rows).itertuples(index=False):
                cells = " | ".join(_preview_cell(v) for v in row)
                lines.append(f"| {cells}" + (" | …" if more > 0 else "") + " |")
        if notes_text:
            lines.append(notes_text)
        return "\n".join(lines)

    ncols = len(df.columns)
    text = render(ncols)
    while len(text) > _SUMMARY_LIMIT and ncols > 1:
        ncols = max(1, min(ncols - 1, ncols * _SUMMARY_LIMIT // len(text)))
        text = render(ncols)
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


def _text_summary(text: str, name: str, label: str) -> str:
    lines = text.splitlines()
    excerpt = text.strip()[:600]
    more = "…" if len(text.strip()) > 600 else ""
    return f"{name}: {label}; {len(lines)} lines, {len(text)} characters\n{excerpt}{more}"


def _pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")  # an empty user password only restricts printing
    return [page.extract_text() or "" for page in reader.pages]


def _image_summary(data: bytes, name: str, mime: str) -> str:
    if mime == "image/png" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return f"{name}: PNG image, {width}×{height} px, {_human(len(data))}"
    return f"{name}: {mime.split('/')[1].upper()} image, {_human(len(data))}"


# --- text for search -----------------------------------------------------------------------


def _grid_as_csv(grid: _Grid) -> str:
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
        return "\f".join(_pdf_pages(data))
    if kind == "text":
        return decode_bytes(data)[0]
    if kind == "table":
        return _grid_as_csv(_read_grid(data, Path(path).name))
    return ""


# --- sales items for /bill -----------------------------------------------------------------

# Shown to people as written here; matched after _norm_header (case, spaces, "_", units).
_FIELDS: dict[str, tuple[str, ...]] = {
    "name": (
        "花名", "品名", "商品", "名称", "商品名称", "品种", "花卉",
        "name", "item", "flower", "product", "item_name", "product_name", "flower_name",
    ),
    "quantity": (
        "数量", "销量", "销售数量", "件数", "qty", "quantity", "count", "sold", "units",
    ),
    "unit_cost": (
        "进价", "成本", "成本价", "单位成本", "进货价", "采购价",
        "unit_cost", "cost", "cost_price", "purchase_price",
    ),
    "unit_price": (
        "售价", "单价", "零售价", "销售价", "卖价",
        "unit_price", "price", "sale_price", "selling_price", "retail_price",
    ),
}  # fmt: skip
_FIELD_EN = {
    "name": "name",
    "quantity": "quantity",
    "unit_cost": "unit cost",
    "unit_price": "unit price",
}
_FIELD_ZH = {"name": "名称", "quantity": "数量", "unit_cost": "进价", "unit_price": "售价"}
_TOTAL_NAMES = {
    "合计",
    "总计",
    "小计",
    "总和",
    "共计",
    "total",
    "totals",
    "sum",
    "grandtotal",
    "subtotal",
}


def _norm_header(header: str) -> str:
    """``"Unit Cost (CNY)"`` -> ``"unitcost"``; ``"进价(元)"`` -> ``"进价"``."""
    h = unicodedata.normalize("NFKC", header).lower()
    h = re.sub(r"[(\[【{].*?[)\]】}]", "", h)  # units: (元), (CNY), [kg]; NFKC made （） ASCII
    return re.sub(r"[\s_\-./:：]+", "", h)


def _map_columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    normalised = [_norm_header(h) for h in header]
    for fld, names in _FIELDS.items():
        accepted = {_norm_header(n) for n in names}
        for i, h in enumerate(normalised):
            if h in accepted and i not in found.values():
                found[fld] = i
                break
    return found


def _decimal(text: str, *, row: int, column: str, what: str) -> Decimal:
    plain, _, _ = _number_text(text)
    value: Decimal | None = None
    if plain is not None:
        with contextlib.suppress(InvalidOperation):
            value = Decimal(plain)
    if value is None or not value.is_finite():
        shown = text.strip() or "(empty)"
        raise FileRejected(
            f"Row {row}, column {column!r}: {what} {shown!r} is not a number.",
            zh=f"第 {row} 行，“{column}”列：{_zh_what(what)} {shown!r} 不是数字。",
        )
    if value < 0:
        raise FileRejected(
            f"Row {row}, column {column!r}: {what} {text.strip()} is negative.",
            zh=f"第 {row} 行，“{column}”列：{_zh_what(what)} {text.strip()} 是负数。",
        )
    return value


def _zh_what(what: str) -> str:
    return {"quantity": "数量", "unit cost": "进价", "unit price": "售价"}.get(what, what)


def read_sales_items(path: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The line items of a sales table for ``/bill``: name, quantity, unit cost, unit price.

    Headers are matched in Chinese or English, ignoring case, spaces, underscores and a unit in
    brackets ("进价(元)", "Unit Cost (CNY)"). Numbers are exact Decimals parsed from the cell
    text ("3.10" stays ``Decimal("3.10")``; thousands separators and a currency sign are
    allowed). Fully empty rows and total rows ("合计", "总计", "Total") are skipped. Raises
    :class:`FileRejected` naming the columns found, or the row and column of a bad cell.
    """
    display = name or Path(path).name
    grid = _read_grid(Path(path).read_bytes(), display)
    mapping = _map_columns(grid.header)
    missing = [f for f in _FIELDS if f not in mapping]
    if missing:
        found = ", ".join(grid.header) or "(none)"
        accepted_en = "; ".join(f"{_FIELD_EN[f]}: {'/'.join(_FIELDS[f])}" for f in _FIELDS)
        accepted_zh = "；".join(f"{_FIELD_ZH[f]}：{'/'.join(_FIELDS[f])}" for f in _FIELDS)
        raise FileRejected(
            f"{display}: cannot find the {', '.join(_FIELD_EN[f] for f in missing)} column(s). "
            f"Columns found: {found}. Accepted column names — {accepted_en}.",
            zh=f"{display}：找不到{'、'.join(_FIELD_ZH[f] for f in missing)}列。"
            f"文件中的列：{found}。可用的列名——{accepted_zh}。",
        )
    items: list[dict[str, Any]] = []
    for number, row in zip(grid.row_numbers, grid.rows, strict=True):
        cells = {f: row[i].strip() for f, i in mapping.items()}
        if not any(cells.values()):
            continue
        if _norm_header(cells["name"]).rstrip(":：") in _TOTAL_NAMES:
            continue
        if not cells["name"]:
            raise FileRejected(
                f"{display}: row {number} has numbers but no {grid.header[mapping['name']]!r}.",
                zh=f"{display}：第 {number} 行有数字但没有“{grid.header[mapping['name']]}”。",
            )
        item: dict[str, Any] = {"name": cells["name"]}
        for fld in ("quantity", "unit_cost", "unit_price"):
            item[fld] = _decimal(
                cells[fld], row=number, column=grid.header[mapping[fld]], what=_FIELD_EN[fld]
            )
        items.append(item)
    if not items:
        raise FileRejected(
            f"{display} has the right columns but no sales rows.",
            zh=f"{display} 的列正确，但没有销售数据行。",
        )
    return items


# --- intake --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Checked:
    kind: Kind
    mime: str
    summary: str


def _check(data: bytes, name: str, preview_rows: int) -> _Checked:
    """Everything that can refuse a file, before a byte is written."""
    kind, mime = sniff_kind(data, name)
    if kind == "table":
        summary = summarize(_load_table_bytes(data, name), name, preview_rows)
    elif kind == "text":
        text, encoding = decode_bytes(data)
        label = {MIME_JSON: "JSON", MIME_MD: "Markdown"}.get(mime, "text")
        summary = _text_summary(text, name, f"{label}, encoding {encoding}")
    elif kind == "pdf":
        try:
            pages = _pdf_pages(data)
        except Exception as exc:  # pypdf: page-level errors surface only when reading text
            raise FileRejected(
                f"{name} is a damaged PDF ({exc}).", zh=f"{name} 是损坏的 PDF（{exc}）。"
            ) from exc
        text = "\n".join(pages)
        label = f"PDF, {len(pages)} pages"
        if not text.strip():
            label += ", no text layer (scanned?)"
        summary = _text_summary(text, name, label)
    else:
        summary = _image_summary(data, name, mime)
    return _Checked(kind, mime, summary)


def _write_blob(root: Path, sha: str, data: bytes) -> Path:
    """Store the bytes once under ``root/<sha[:2]>/<sha>``; atomic, so a crash leaves no half."""
    target = root / sha[:2] / sha
    if target.exists() and target.stat().st_size == len(data):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, ext = os.path.splitext(name)
    n = 2
    while f"{stem} ({n}){ext}" in taken:
        n += 1
    return f"{stem} ({n}){ext}"


class FileIntake:
    """Checks, stores and records files people attach to a thread.

    ``on_ingested`` hooks run after a new file is stored (file search indexes it there); a
    failing hook is logged and does not undo the upload.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        on_ingested: list[OnIngested] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_ingested: list[OnIngested] = list(on_ingested or [])
        # Held only around "is it there yet? then insert", so two uploads of the same bytes to
        # one thread at once make one row; the slow parsing runs outside it.
        self._insert_lock = asyncio.Lock()

    async def ingest(self, thread_id: str, name: str, data: bytes) -> FileRef:
        """Check ``data``, store it once on disk and once per thread; return its FileRef.

        Raises :class:`FileRejected` (too large, empty, wrong type, unreadable) and then stores
        nothing. The same bytes sent again to the same thread return the existing FileRef.
        """
        safe = sanitize_name(name)
        limit = self.settings.file_max_bytes
        if len(data) > limit:
            raise FileRejected(
                f"{safe} is {_human(len(data))}; the limit is {_human(limit)}. "
                "Send a smaller file (e.g. one month, or only the needed columns).",
                zh=f"{safe} 大小为 {_human(len(data))}，超过上限 {_human(limit)}。"
                "请发送更小的文件（例如只含一个月或所需的列）。",
            )
        sha = hashlib.sha256(data).hexdigest()
        found = await self._existing(thread_id, sha)
        if found is not None:
            return found
        checked = await asyncio.to_thread(_check, data, safe, self.settings.preview_rows)
        async with self._insert_lock:
            found = await self._existing(thread_id, sha)
            if found is not None:
                return found
            path = await asyncio.to_thread(
                _write_blob, self.settings.files_dir.resolve(), sha, data
            )
            taken = {r.name for r in await self.store.list_files(thread_id)}
            ref = FileRef(
                id=new_id("file"),
                thread_id=thread_id,
                # Two different files called sales.csv stay apart for the model and sandbox.
                name=_unique_name(safe, taken),
                path=str(path),
                sha256=sha,
                size=len(data),
                mime=checked.mime,
                kind=checked.kind,
                summary=checked.summary,
            )
            await self.store.add_file(ref)
        for hook in self.on_ingested:
            try:
                await hook(ref)
            except Exception:
                log.exception("on_ingested hook failed for %s (%s)", ref.name, ref.id)
        return ref

    async def _existing(self, thread_id: str, sha: str) -> FileRef | None:
        for ref in await self.store.list_files(thread_id):
            if ref.sha256 == sha:
                return ref
        return None
