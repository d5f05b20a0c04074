"""What the Telegram adapter persists: the next ``getUpdates`` offset and approval messages.

Both go through :mod:`bots.channel` (and so ``Tallybot.channels``), never the store itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from bots.channel import ApprovalRecords

if TYPE_CHECKING:
    from core.app import Tallybot


class Offset:
    """The next ``getUpdates`` offset, persisted so it survives restarts."""

    def __init__(self, bot: Tallybot, key: str) -> None:
        self._bot = bot
        self._key = key
        self._value = 0
        self._lock = asyncio.Lock()

    async def load(self) -> int:
        raw = await self._bot.channels.get(self._key)
        self._value = int(raw) if raw and raw.isdigit() else 0
        return self._value

    async def advance(self, update_id: int) -> None:
        async with self._lock:
            # Updates run concurrently; never move the stored offset backwards.
            if update_id + 1 > self._value:
                self._value = update_id + 1
                await self._bot.channels.put(self._key, str(self._value))


@dataclass(frozen=True, slots=True)
class ApprovalMessage:
    """The message that carries a run's buttons."""

    chat_id: int
    message_id: int
    topic_id: int | None
    text: str
    lang: str
    private: bool


class ApprovalBook:
    """run id → its approval message, persisted; :meth:`claim` hands a record out only once."""

    def __init__(self, bot: Tallybot, prefix: str) -> None:
        self._records = ApprovalRecords(bot, prefix)

    async def remember(self, run_id: str, **fields: object) -> None:
        record = ApprovalMessage(**fields)  # type: ignore[arg-type]
        await self._records.remember(run_id, asdict(record))

    async def claim(self, run_id: str) -> ApprovalMessage | None:
        raw = await self._records.claim(run_id)
        return ApprovalMessage(**raw) if raw else None
