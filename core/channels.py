"""Platform state for chat adapters: once-only deliveries, small records, known threads.

Adapters under ``bots/`` never touch the store; what they have to remember across restarts
goes through :class:`ChannelState`, reached as ``Tallybot.channels``:

    if await bot.channels.first_delivery("slack:event", event_id):
        ...                                              # handle it, once per database
    await bot.channels.put("telegram:123:offset", "42")   # a small persisted value
    record = await bot.channels.take("slack:approval:run_1")  # read and clear, once

The rows live in the store's ``processed_events`` and ``kv`` tables, so every process that
shares a database shares the answers.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from core import receipt

if TYPE_CHECKING:
    from core.domain import Thread
    from core.replica import Replica
    from core.store import Store


class ChannelState:
    """What a chat platform remembers between deliveries, behind a few store calls."""

    def __init__(self, store: Store, replica: Callable[[], Replica | None] | None = None) -> None:
        self._store = store
        self._replica = replica
        # kv has no compare-and-delete; within one process the lock makes ``take`` atomic.
        self._take_lock = asyncio.Lock()

    async def first_delivery(self, source: str, key: str) -> bool:
        """True the first time ``(source, key)`` is seen, False for every redelivery.

        Under a receipt (an HTTP delivery in ``tallybot serve``) the claim is a lease until
        the message is stored: a process killed before storing it leaves no permanent
        claim, so the platform's retry is handled by whichever replica gets it."""
        current = receipt.current()
        replica = self._replica() if self._replica is not None else None
        if current is None or replica is None:
            return await self._store.mark_processed(source, key)
        if await self._store.was_processed(source, key):
            return False
        name = f"delivery:{source}:{key}"
        if len(name) > 190:
            name = "delivery:" + hashlib.sha256(name.encode()).hexdigest()
        owner = await replica.try_hold(name)
        if owner is None:
            # A live process holds it but has not stored it yet; it may still die. Not a
            # duplicate to drop: the receipt fails, so the platform delivers it again later.
            await current.failed()
            return False

        async def settle(ok: bool) -> None:
            if ok:  # already done if the message was stored with it; a no-op then
                await self._store.mark_processed(source, key)
            await replica.release(name, owner)

        current.claims.append((source, key))
        current.on_settle(settle)
        return True

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``; None (or "" once taken) when there is none."""
        return await self._store.kv_get(key)

    async def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        await self._store.kv_set(key, value)

    async def take(self, key: str) -> str | None:
        """The value under ``key``, handed out once: later calls get None."""
        async with self._take_lock:
            raw = await self._store.kv_get(key)
            if not raw:
                return None
            # kv has no delete; an empty value means "already taken".
            await self._store.kv_set(key, "")
        return raw

    async def thread(self, key: str) -> Thread | None:
        """The thread for a channel key, or None when nobody has talked there yet."""
        return await self._store.thread_by_key(key)
