"""File names and sizes as people see them: a safe display name, an extension, "1.2 MB"."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath


def human_size(size: int) -> str:
    """``1536`` -> ``"1.5 KB"``: sizes as people read them in messages."""
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


def file_ext(name: str | None) -> str:
    """The lower-case extension of the sanitised name (``".csv"``), or ``""``."""
    return PurePosixPath(sanitize_name(name or "")).suffix.lower()


def capped_list(items: list[str], limit: int = 20, sep: str = ", ") -> tuple[str, str]:
    """``items`` joined for a message, English and Chinese, the first ``limit`` of them and
    then how many more: a file with 10,000 columns must not become 70 KB of error text."""
    shown = sep.join(items[:limit])
    more = len(items) - limit
    if more <= 0:
        return shown, shown
    return f"{shown} … and {more:,} more", f"{shown} …… 等另外 {more:,} 个"
