"""One column of a streamed CSV: its type decided piece by piece, as ``_convert`` would decide it.

:class:`ColumnScan` is fed the column's cells a chunk of rows at a time (stripped text, missing
as None) and ends with the same answer :func:`core.files.tables._convert` gives for the whole
column at once: int, float or text, and the same flags for the notes (thousands separators,
currency signs, leading zeros, formula-like text). Only counters and booleans are kept, so a
50 MB upload costs one chunk of cells, not the file as Python strings.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from core.files.tables import _NUMBER

_SAMPLE = 50  # _convert's early exit looks at the first 50 present cells
_SIGNS = re.compile(r"[¥￥$€£]")
_FIX = re.compile(r"[¥￥$€£\s,]")
# A cell starting with zero and then a digit, in cells joined by NUL (every \w covers isdigit).
_ZERO_START = re.compile(r"\0[+-]*0\w")


_ALL_NUMBERS = re.compile(f"(?:\\0(?:{_NUMBER.pattern}))*")


def _parsed(cells: list[str]) -> Any:
    """``pd.to_numeric`` of the cells as ``_convert`` calls it, on a plain object array: the
    same parser and dtype, without building Series (10,000 columns x chunks add up)."""
    array = np.empty(len(cells), dtype=object)
    array[:] = cells
    return pd.to_numeric(array, errors="coerce")


def _joined(cells: list[str]) -> str:
    """The cells as one string, each after a NUL: substring tests over a chunk in one call."""
    return "\0" + "\0".join(cells)


class ColumnScan:
    """The running type of one column; :meth:`feed` chunks in order, then read :meth:`kind`."""

    __slots__ = (
        "_pending",
        "_sampled",
        "failed",
        "flags",
        "floaty",
        "ints",
        "missing",
        "nonblank",
        "nonfinite",
        "present",
        "tokens",
        "unparsed",
    )

    def __init__(self) -> None:
        self.flags = {"formula": False, "thousands": False, "currency": False, "zeros": False}
        self.tokens: Counter[str] = Counter()  # missing-value words seen, in first-seen order
        self.present = 0
        self.missing = False  # some cell is missing (the int column is nullable)
        self.nonblank = False  # some cell has text, "N/A" too (else the column is dropped)
        self.failed = False  # text for sure: a cell is not a number
        self.unparsed = False  # a cleaned number pandas still cannot read
        self.nonfinite = False  # "inf" and friends
        self.ints = True  # every chunk parsed as integers...
        self.floaty = False  # ...and no cell has a "." or an exponent
        self._pending: list[str] = []
        self._sampled = False

    def feed(self, present: list[str], tokens: list[str], *, missing: bool) -> None:
        """The next chunk's present cells (stripped, in order), the missing words in it (in
        order) and whether any of its cells was missing."""
        self.tokens.update(tokens)
        self.missing |= missing
        if not present:
            return
        self.present += len(present)
        if not self.flags["formula"] and "\0=" in _joined(present):
            self.flags["formula"] = any(c.startswith("=") for c in present)
        if self.failed:
            return
        if not self._sampled:
            # Wait for 50 present cells before judging, exactly like the whole-column check.
            self._pending.extend(present)
            if len(self._pending) < _SAMPLE:
                return
            present, self._pending = self._pending, []
            self._start(present)
        if not self.failed:
            self._numbers(present)

    def finish(self) -> None:
        """Judge what is still waiting for the 50-cell sample (a short column)."""
        if not self._sampled and self._pending and not self.failed:
            present, self._pending = self._pending, []
            self._start(present)
            if not self.failed:
                self._numbers(present)

    def _start(self, present: list[str]) -> None:
        self._sampled = True
        if not all(_NUMBER.fullmatch(c) for c in present[:_SAMPLE]):
            self.failed = True

    def _numbers(self, present: list[str]) -> None:
        nums = _parsed(present)
        bad = np.flatnonzero(pd.isna(nums))
        if len(bad):
            fixed = list(present)
            texts = _joined([present[i] for i in bad])
            # One regular expression over the joined cells decides the common case (thousands
            # separators everywhere) at C speed; a cell that is no number takes the exact loop.
            if texts.count("\0") == len(bad) and _ALL_NUMBERS.fullmatch(texts):
                self.flags["thousands"] |= "," in texts
                self.flags["currency"] |= bool(_SIGNS.search(texts))
                for i, text in zip(bad, _FIX.sub("", texts)[1:].split("\0"), strict=True):
                    fixed[i] = text
                bad = bad[:0]
            for i in bad:
                text = present[i]
                if not _NUMBER.fullmatch(text):
                    self.failed = True
                    return
                self.flags["thousands"] |= "," in text
                self.flags["currency"] |= bool(_SIGNS.search(text))
                fixed[i] = _FIX.sub("", text)
            present = fixed
            nums = _parsed(present)
            if pd.isna(nums).any():
                self.unparsed = True
        values = np.asarray(nums, dtype="float64")
        if not np.isfinite(values[~np.isnan(values)]).all():
            self.nonfinite = True
        joined = _joined(present)
        # The joined text finds candidates at C speed; the exact per-cell test confirms them.
        if not self.flags["zeros"] and _ZERO_START.search(joined):
            self.flags["zeros"] = any(
                len(c) > 1 and c.lstrip("+-")[:1] == "0" and c.lstrip("+-")[1:2].isdigit()
                for c in present
            )
        if nums.dtype.kind not in "iu":
            self.ints = False
        elif "." in joined or "e" in joined or "E" in joined:
            self.floaty = True

    def kind(self) -> str:
        """``"int"``, ``"float"`` or ``"text"``, once every chunk is in (after :meth:`finish`)."""
        if self.failed or not self.present or self.unparsed or self.nonfinite:
            return "text"
        if self.flags["zeros"]:
            return "text"
        return "int" if self.ints and not self.floaty else "float"

    def note_flags(self) -> dict[str, bool]:
        """The flags :func:`~core.files.tables._convert` would report for the whole column."""
        flags = dict(self.flags)
        # _convert checks leading zeros last, and only for a column still numeric by then.
        if self.failed or not self.present or self.unparsed or self.nonfinite:
            flags["zeros"] = False
        return flags

    def value(self, cell: str | None) -> Any:
        """A head cell as the loaded DataFrame holds it once the column's kind is known."""
        if cell is None:
            return None
        kind = self.kind()
        if kind == "text":
            return cell
        fixed = _FIX.sub("", cell)
        return int(fixed) if kind == "int" else float(fixed)
