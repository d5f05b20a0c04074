"""Bounded admission: at most N runs execute at once in this process; the rest wait in order.

Without a bound, a burst of conversations opens as many runs as arrive and they fight for
the database pool until some time out half-way (and are left live). ``asyncio.Semaphore``
wakes waiters first come, first served, so waiting runs keep their arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Admission:
    """``async with admission.slot(): ...`` runs at most ``limit`` bodies at once."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._sem = asyncio.Semaphore(self.limit)
        self.waiting = 0
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.running -= 1
            if not self.running:
                self._idle.set()
            self._sem.release()

    async def drain(self, within: float) -> bool:
        """Wait up to ``within`` seconds for running bodies to end; True when none is left."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)
        return self.running == 0
