"""This process among the replicas sharing one database: leases, renewed while it lives.

    replica = Replica(store, ttl=10)
    replica.start()                               # renews every lease it holds, ttl/3 apart
    async with replica.holding(f"thread:{tid}"):  # waits while another live process holds it
        ...
    await replica.stop()                          # releases everything

A process that dies (kill -9, a lost node) stops renewing; its leases lapse after ``ttl``
seconds and another replica may take them. Everything here is one row per lease in the
store (:mod:`core.store.leases`), so it works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from core.domain import new_id

if TYPE_CHECKING:
    from core.store import Store

log = logging.getLogger(__name__)


class Replica:
    """One process's identity and leases."""

    def __init__(self, store: Store, *, ttl: float = 10.0, poll: float = 0.05) -> None:
        self.store = store
        self.ttl = ttl
        self.poll = poll
        self.id = f"{socket.gethostname()[:30]}:{os.getpid()}:{new_id('r')[-8:]}"
        self._task: asyncio.Task[None] | None = None
        self._beat: Store | None = None

    def token(self) -> str:
        """A fresh owner token: each hold is its own owner, even within this process."""
        return f"{self.id}:{new_id('h')[-10:]}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._renew_loop(), name="tallybot-leases")

    async def _beat_store(self) -> Store:
        # Renewals use a connection of their own: when runs exhaust the shared pool, a
        # heartbeat queued behind them would let live leases lapse.
        if self._beat is None:
            from core.store import Store

            url = self.store.db.url.render_as_string(hide_password=False)
            self._beat = await Store.open(url, migrate=False)
        return self._beat

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.store.release_replica(self.id)
        if self._beat is not None:
            await self._beat.close()
            self._beat = None

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                beat = await self._beat_store()
                await beat.renew_leases(self.id, self.ttl)
            except Exception:  # the next beat may succeed; leases last ``ttl``
                log.exception("renewing leases failed")

    async def try_hold(self, name: str, owner: str | None = None) -> str | None:
        """The owner token when ``name`` was free (or lapsed) and is now held, else None."""
        owner = owner or self.token()
        return owner if await self.store.take_lease(name, owner, self.id, self.ttl) else None

    async def hold(self, name: str) -> str:
        """Wait until ``name`` is held; returns the owner token for :meth:`release`."""
        owner = self.token()
        delay = self.poll
        while not await self.store.take_lease(name, owner, self.id, self.ttl):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)  # waiting writers must not crowd the pool
        return owner

    async def release(self, name: str, owner: str) -> None:
        await self.store.release_lease(name, owner)

    @contextlib.asynccontextmanager
    async def holding(self, name: str) -> AsyncIterator[str]:
        owner = await self.hold(name)
        try:
            yield owner
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(name, owner))
