"""Adapter state: once-only delivery of inbound events, and a small key-value table."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain import utcnow
from core.store.tables import kv, processed_events


class PlatformRepo:
    """What chat adapters persist besides threads: seen deliveries and kv settings."""

    engine: AsyncEngine

    async def mark_processed(self, source: str, key: str) -> bool:
        """Record an inbound delivery; False when it was seen before (a retry/redelivery)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    processed_events.insert().values(source=source, key=key, created_at=utcnow())
                )
        except IntegrityError:
            return False
        return True

    async def kv_get(self, key: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(kv.c.value).where(kv.c.key == key))).scalar()

    async def kv_set(self, key: str, value: str) -> None:
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                kv.update().where(kv.c.key == key).values(value=value, updated_at=utcnow())
            )
            if updated.rowcount == 0:
                await conn.execute(kv.insert().values(key=key, value=value, updated_at=utcnow()))
