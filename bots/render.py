"""Shared rendering for chat channels: split long text to a platform's limit, throttle edits,
and format a bill as a plain-text table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core.format import bill_table

__all__ = ["Throttle", "bill_table", "split_text"]


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
