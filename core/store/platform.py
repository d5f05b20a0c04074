"""Adapter state: once-only delivery of inbound events, and a small key-value table."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.domain import utcnow
from core.store.base import Database
from core.store.tables import kv, processed_events


class PlatformRepo:
    """What chat adapters persist besides threads: seen deliveries and kv settings."""

    db: Database

    async def mark_processed(self, source: str, key: str) -> bool:
        """Record an inbound delivery; False when it was seen before (a retry/redelivery)."""
        insert = processed_events.insert().values(source=source, key=key, created_at=utcnow())
        try:
            await self.db.write(lambda conn: conn.execute(insert))
        except IntegrityError:
            return False
        return True

    async def kv_get(self, key: str) -> str | None:
        q = sa.select(kv.c.value).where(kv.c.key == key)
        value: str | None = await self.db.read(lambda conn: conn.execute(q).scalar())
        return value

    async def kv_set(self, key: str, value: str) -> None:
        def work(conn: sa.Connection) -> None:
            updated = conn.execute(
                kv.update().where(kv.c.key == key).values(value=value, updated_at=utcnow())
            )
            if updated.rowcount == 0:
                conn.execute(kv.insert().values(key=key, value=value, updated_at=utcnow()))

        await self.db.write(work)
