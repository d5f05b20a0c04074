"""Adapter state: once-only delivery of inbound events, and a small key-value table."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.domain import utcnow
from core.store.base import Database
from core.store.fast import Prepared
from core.store.tables import kv, processed_events

# Prepared once (issue 12): the outbox writes twice per turn of `tallybot serve`.
_KV_GET = Prepared(sa.select(kv.c.value).where(kv.c.key == sa.bindparam("w_key")))
_KV_SET = Prepared(kv.update().where(kv.c.key == sa.bindparam("w_key")))
_KV_INSERT = Prepared(kv.insert())


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
        params = {"w_key": key}
        value: str | None = await self.db.read(lambda conn: _KV_GET.scalar(conn, params))
        return value

    async def kv_set(self, key: str, value: str) -> None:
        def work(conn: sa.Connection) -> None:
            now = utcnow()
            if _KV_SET.run(conn, {"w_key": key, "value": value, "updated_at": now}) == 0:
                _KV_INSERT.run(conn, {"key": key, "value": value, "updated_at": now})

        await self.db.write(work)
