"""Shared rendering for chat channels: split long text to a platform's limit, throttle edits,
and format a bill as a plain-text table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters.

    Prefers paragraph breaks, then line breaks, then spaces; never splits inside a fenced code
    block boundary marker; falls back to a hard cut for one very long word.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            pos = window.rfind(sep)
            if pos > limit // 3:
                cut = pos + len(sep)
                break
        if cut <= 0:
            cut = limit
        chunk = rest[:cut]
        # Keep code fences balanced in every chunk so each renders on its own.
        if chunk.count("```") % 2 == 1:
            chunk = chunk.rstrip() + "\n```"
            rest = "```\n" + rest[cut:]
            if len(chunk) > limit:  # no room to close the fence: hard cut instead
                chunk, rest = text_hard_cut(rest, limit)
        else:
            rest = rest[cut:]
        chunks.append(chunk.rstrip("\n") if chunk.strip() else chunk)
    if rest or not chunks:
        chunks.append(rest)
    return [c for c in chunks if c] or [""]


def text_hard_cut(text: str, limit: int) -> tuple[str, str]:
    return text[:limit], text[limit:]


class Throttle:
    """Allows an action at most once per ``interval`` seconds (e.g. message edits).

    ``ready()`` says whether the action may run now; ``mark()`` records that it ran. The clock
    is injectable so tests need not sleep.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        return self._last is None or self._clock() - self._last >= self.interval

    def mark(self) -> None:
        self._last = self._clock()

    def wait_time(self) -> float:
        if self._last is None:
            return 0.0
        return max(0.0, self.interval - (self._clock() - self._last))


def bill_table(bill: dict[str, Any], lang: str = "en") -> str:
    """A monospace table of a Bill JSON object (money as decimal strings)."""
    zh = lang == "zh"
    head = (
        ("品名", "数量", "进价", "售价", "成本", "收入")
        if zh
        else ("item", "qty", "unit cost", "unit price", "cost", "revenue")
    )
    rows = [head] + [
        (i["name"], i["quantity"], i["unit_cost"], i["unit_price"], i["cost"], i["revenue"])
        for i in bill.get("items", [])
    ]
    widths = [max(_width(str(r[c])) for r in rows) for c in range(len(head))]
    lines = ["  ".join(_pad(str(v), widths[c], right=c > 0) for c, v in enumerate(r)) for r in rows]
    total = (
        f"成本 {bill['cost']}  收入 {bill['revenue']}  利润 {bill['profit']} {bill['currency']}"
        if zh
        else f"cost {bill['cost']}  revenue {bill['revenue']}  profit {bill['profit']} {bill['currency']}"
    )
    title = (
        f"账单 #{bill['id']}（{bill['date']}，第 {bill['revision']} 版）"
        if zh
        else f"Bill #{bill['id']} ({bill['date']}, revision {bill['revision']})"
    )
    return "\n".join([title, *lines, total])


def _width(s: str) -> int:
    # East Asian characters take two columns in a monospace font.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _pad(s: str, width: int, *, right: bool) -> str:
    gap = " " * (width - _width(s))
    return gap + s if right else s + gap
