"""What the bytes of an upload are: text decoding and type sniffing by content.

:func:`sniff_kind` decides what the bytes *are* (magic numbers, then text decoding), not what
the name says. A PNG or an executable renamed ``.csv`` is refused; a CSV saved as ``.xls`` by a
web export is read as the CSV it is. :func:`decode_bytes` finds the encoding of text (BOMs,
UTF-8, GBK/GB18030 vs Big5, then charset-normalizer). The delimiter scoring here is shared with
the CSV reader in :mod:`core.files.grid`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from core.errors import FileRejected
from core.files.names import file_ext, human_size, sanitize_name

Kind = Literal["table", "text", "pdf", "image"]

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

SAMPLE = 64 * 1024
# A zip whose members inflate past this many times the upload limit is treated as a zip bomb.
_MAX_ZIP_RATIO = 20


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
    if len(data) <= SAMPLE:
        return data
    cut = data.rfind(b"\n", 0, SAMPLE)
    return data[: cut + 1] if cut > 0 else data[:SAMPLE]


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
    text, encoding, _codec, _errors = _decoded(data)
    return text, encoding


def text_codec(data: bytes) -> tuple[str, str, str]:
    """How :func:`decode_bytes` decodes ``data``: ``(codec, errors, encoding)``, for readers
    that stream the text in pieces instead of holding all of it (a 50 MB upload)."""
    _text, encoding, codec, errors = _decoded(data)
    return codec, errors, encoding


def _decoded(data: bytes) -> tuple[str, str, str, str]:
    """``(text, reported encoding, codec, errors)``: the one place decoding is decided."""
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
            return text, encoding, encoding, "strict"
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
        return text, "utf-8", "utf-8", "strict"
    chinese = _chinese(_sample(data))
    if chinese == "big5":
        text = _strict(data, "cp950")
        if text is not None:
            return text, "big5", "cp950", "strict"
        return data.decode("big5hkscs", errors="replace"), "big5", "big5hkscs", "replace"
    if chinese == "gb18030":
        text = _strict(data, "gb18030")
        if text is not None:
            label = "gbk" if _strict(data, "gbk") is not None else "gb18030"
            return text, label, "gb18030", "strict"
        gbk = _strict(data, "gbk")  # 0x80 (euro sign) is cp936/gbk, not gb18030
        if gbk is not None:
            return gbk, "gbk", "gbk", "strict"
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
    errors = "strict"
    if text is None:
        text, errors = data.decode(encoding, errors="replace"), "replace"
    return text, encoding.replace("_", "-"), encoding, errors


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
            f"{name} unpacks to {human_size(inflated)}, too large to open safely.",
            zh=f"{name} 解压后有 {human_size(inflated)}，太大，无法安全打开。",
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


def json_tabular(value: Any) -> list[dict[str, Any]] | None:
    """Records when the JSON is a table: a list of objects, or one key holding such a list."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return None


def delimiter_scores(text: str) -> dict[str, float]:
    """For each candidate delimiter, the share of rows with the most common field count
    (0 when that count is 1): how consistently it splits the first 200 lines."""
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
    if len(lines) > 1 and not text.endswith(("\n", "\r")) and len(text) >= SAMPLE:
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


def _head_lines(text: str, count: int) -> list[str]:
    """``text.splitlines()[:count]`` without splitting all of a 50 MB text into lines."""
    size = SAMPLE
    while True:
        # Every part but the last of a prefix is a whole line; with more than ``count`` parts
        # the first ``count`` are exactly the text's first lines.
        parts = text[:size].splitlines()
        if len(parts) > count or size >= len(text):
            return parts[:count]
        size *= 4


def _looks_tabular(text: str) -> bool:
    """Text that is a delimited table: several rows, all with the same 2+ fields."""
    lines = [ln for ln in _head_lines(text, 200) if ln.strip()]
    if len(lines) < 3:
        return False
    scores = delimiter_scores(text[:SAMPLE])
    return max(scores.values(), default=0.0) >= 0.95


def _sniff_binary(data: bytes, name: str, family: str | None) -> tuple[Kind, str] | None:
    """The binary formats, by magic number; None when the bytes may be text.

    ``family`` is what the extension promises; a binary format under another family's name
    is refused.
    """
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
    return None


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
    ext = file_ext(name)
    family = _EXT_FAMILY.get(ext)
    binary = _sniff_binary(data, name, family)
    if binary is not None:
        return binary
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
            return ("table" if json_tabular(value) is not None else "text"), MIME_JSON
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
        and delimiter_scores(text[:SAMPLE]).get("\t", 0) >= 0.95
    ):
        # Excel's "Unicode Text" export is a tab-separated table named .txt; other .txt files
        # stay text, since prose with commas can look regular over a few lines.
        return "table", MIME_TSV
    return "text", MIME_TEXT
