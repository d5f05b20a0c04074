"""Acknowledge an inbound delivery only once what it carried is stored.

An HTTP endpoint (Slack events, the Telegram webhook) opens a :class:`Receipt` around the
work one request starts; the work runs in tasks that inherit it (a context variable).
:meth:`Receipt.stored` is called by the facade right after the user message is in the
database, :meth:`Receipt.failed` when storing it failed. The endpoint then answers:

* stored, or the work finished without anything to store (a command, a duplicate, a
  refusal): 200, and the once-only claims made for the delivery are made permanent;
* storing failed (disk full, database down): 503, the claims are released, so the
  platform's retry is handled instead of being dropped as a duplicate;
* not stored yet when the platform's deadline nears (an overloaded process): 503 as well.
  The work goes on; the retry meets the live claim (503 again) or, once stored, a
  duplicate (200). A person's next message is thus never taken before this one is stored.

Without a receipt (Socket Mode, long polling, the console) nothing changes: claims are
permanent at once, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

Settle = Callable[[bool], Awaitable[None]]

_CURRENT: ContextVar[Receipt | None] = ContextVar("tallybot_receipt", default=None)


def current() -> Receipt | None:
    """The receipt of the delivery being handled in this context, if any."""
    return _CURRENT.get()


class Receipt:
    """What one inbound delivery became: stored, failed, or nothing to store."""

    def __init__(self) -> None:
        self.ok: bool | None = None
        self._done = asyncio.Event()
        self._tasks: list[asyncio.Task[object]] = []
        self._settlers: list[Settle] = []
        # Deliveries ``(source, key)`` claimed for this receipt: recorded as handled in the
        # transaction that stores the message.
        self.claims: list[tuple[str, str]] = []

    def __enter__(self) -> Receipt:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)

    def track(self, task: asyncio.Task[object]) -> None:
        """Work started for this delivery; when all of it ends, the receipt settles."""
        self._tasks.append(task)

    def on_settle(self, settle: Settle) -> None:
        """Call ``settle(ok)`` once the outcome is known (claims made for the delivery)."""
        self._settlers.append(settle)

    async def stored(self) -> None:
        await self._settle(True)

    async def failed(self) -> None:
        await self._settle(False)

    async def _settle(self, ok: bool) -> None:
        if self.ok is not None:
            return
        self.ok = ok
        settlers, self._settlers = self._settlers, []
        for settle in settlers:
            await settle(ok)
        self._done.set()

    async def wait(self, within: float) -> bool:
        """True when the delivery may be acknowledged: stored, or handled with nothing to
        store. False when storing failed or is not done within ``within`` seconds (the work
        goes on; the claim stays live until it settles)."""
        if self.ok is None and self._tasks:
            work = asyncio.gather(*self._tasks, return_exceptions=True)
            done = asyncio.ensure_future(self._done.wait())
            waiters: set[asyncio.Future[Any]] = {work, done}
            await asyncio.wait(waiters, timeout=within, return_when="FIRST_COMPLETED")
            done.cancel()
            with contextlib.suppress(BaseException):
                await done
            if work.done() and self.ok is None:
                # Work cancelled before it stored anything (a process shutting down) is not
                # acknowledged: the platform's retry reaches a process that stores it.
                cancelled = any(isinstance(r, asyncio.CancelledError) for r in work.result())
                await self._settle(not cancelled)
            elif self.ok is None:
                # Not known to be stored: not acknowledged. The platform's retry finds the
                # claim (live: 503 again; settled: a duplicate, 200), so nothing is lost.
                log.warning("delivery not stored within %ss; asking for a retry", within)
                return False
        elif self.ok is None:
            await self._settle(True)
        return self.ok is not False
