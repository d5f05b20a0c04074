"""Bounded admission: at most N runs execute at once in this process; the rest wait in order.

Without a bound, a burst of conversations opens as many runs as arrive and they fight for
the database pool until some time out half-way (and are left live). ``asyncio.Semaphore``
wakes waiters first come, first served, so waiting runs keep their arrival order.

At shutdown :meth:`Admission.close` stops admitting: work still waiting for a slot (and any
that asks later) is cancelled, since its run has not started and the next process picks its
message up; :meth:`Admission.drain` then waits for the tasks that were admitted -- not just
for their slots, because a task goes on delivering its answer after its run's slot is free.
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
        self.closed = False
        self._waiters: set[asyncio.Task[object]] = set()
        self._admitted: set[asyncio.Task[object]] = set()  # tasks that ran a body, until done

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if self.closed:
            raise asyncio.CancelledError("shutting down: not admitting new runs")
        self.waiting += 1
        if task is not None:
            self._waiters.add(task)
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
            self._waiters.discard(task)  # type: ignore[arg-type]
        if task is not None and task not in self._admitted:
            self._admitted.add(task)
            task.add_done_callback(self._admitted.discard)
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._sem.release()

    def close(self) -> None:
        """Admit nothing more; cancel the work waiting for a slot."""
        self.closed = True
        for task in list(self._waiters):
            task.cancel()

    @property
    def admitted(self) -> set[asyncio.Task[object]]:
        """Tasks that were admitted and have not finished yet."""
        return {t for t in self._admitted if not t.done()}

    async def drain(self, within: float) -> bool:
        """Wait up to ``within`` seconds for the admitted tasks to end; True when none is
        left. Call :meth:`close` first, or new work keeps arriving."""
        pending = self.admitted - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=within)
        return not self.admitted and not self.running
