"""The Assistants API's own rows: bearer keys, and API objects keyed by (kind, id).

Assistants live here entirely. Threads, messages, runs and files are tallybot's own rows
(threads.py, runs.py, files.py); their ``api_objects`` row says which project owns them and
holds what only the API has (metadata, a run's assistant and overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.domain import utcnow
from core.errors import NotFound
from core.store.base import Database
from core.store.tables import api_keys, api_objects


@dataclass(slots=True)
class ApiKey:
    """A bearer key as stored: never the key itself, only its hash and a display prefix."""

    id: str
    prefix: str
    project: str
    name: str = ""
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None


@dataclass(slots=True)
class ApiObject:
    """One API object row: ``data`` is the object's API-only fields."""

    id: str
    kind: str
    project: str
    parent: str | None
    data: dict[str, Any]
    created_at: datetime
    seq: int = 0


class AssistantsRepo:
    """Keys by hash; API objects by (kind, id), listed per project and parent."""

    db: Database

    # --- keys ------------------------------------------------------------------------------

    @staticmethod
    def _key(row: Any) -> ApiKey:
        return ApiKey(row.id, row.prefix, row.project, row.name, row.created_at, row.revoked_at)

    async def add_api_key(self, key: ApiKey, key_hash: str) -> ApiKey:
        insert = api_keys.insert().values(
            id=key.id,
            key_hash=key_hash,
            prefix=key.prefix,
            project=key.project,
            name=key.name,
            created_at=key.created_at,
        )
        await self.db.write(lambda conn: conn.execute(insert))
        return key

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The live (not revoked) key with this hash."""
        q = sa.select(api_keys).where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
        )
        row = await self.db.read(lambda conn: conn.execute(q).first())
        return self._key(row) if row else None

    async def list_api_keys(self) -> list[ApiKey]:
        q = sa.select(api_keys).order_by(api_keys.c.created_at)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [self._key(r) for r in rows]

    async def revoke_api_key(self, key_id: str) -> ApiKey:
        def work(conn: sa.Connection) -> Any:
            result = conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if result.rowcount != 1:
                raise NotFound(f"no live API key {key_id}")
            return conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()

        return self._key(await self.db.write(work))

    # --- objects ---------------------------------------------------------------------------

    @staticmethod
    def _object(row: Any) -> ApiObject:
        return ApiObject(
            row.id, row.kind, row.project, row.parent, dict(row.data or {}), row.created_at, row.seq
        )

    async def put_api_object(
        self,
        kind: str,
        id_: str,
        project: str,
        data: dict[str, Any],
        *,
        parent: str | None = None,
    ) -> ApiObject:
        """Insert the row, or replace ``data`` of an existing one of the same project."""
        now = utcnow()
        insert = api_objects.insert().values(
            id=id_,
            kind=kind,
            project=project,
            parent=parent,
            data=data,
            deleted=False,
            created_at=now,
        )
        update = (
            api_objects.update()
            .where(_object_of(kind, id_, project))
            .values(data=data, deleted=False)
        )
        try:
            await self.db.write(lambda conn: conn.execute(insert))
        except IntegrityError:
            # The failed INSERT's transaction is gone; the replacement is a new one.
            await self.db.write(lambda conn: conn.execute(update))
        found = await self.get_api_object(kind, id_, project)
        if found is None:  # the id exists under another project
            raise NotFound(f"no {kind} {id_}")
        return found

    async def get_api_object(self, kind: str, id_: str, project: str) -> ApiObject | None:
        """The live row of ``project``; another project's row is as good as missing."""
        q = sa.select(api_objects).where(
            _object_of(kind, id_, project), api_objects.c.deleted.is_(False)
        )
        row = await self.db.read(lambda conn: conn.execute(q).first())
        return self._object(row) if row else None

    async def list_api_objects(
        self, kind: str, project: str, *, parent: str | None = None
    ) -> list[ApiObject]:
        """Live rows of ``project`` (under ``parent`` when given), oldest first."""
        q = sa.select(api_objects).where(
            api_objects.c.kind == kind,
            api_objects.c.project == project,
            api_objects.c.deleted.is_(False),
        )
        if parent is not None:
            q = q.where(api_objects.c.parent == parent)
        q = q.order_by(api_objects.c.seq)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [self._object(r) for r in rows]

    async def delete_api_object(self, kind: str, id_: str, project: str) -> bool:
        """Mark the row deleted (tallybot's own rows stay: runs and bills keep their history)."""
        update = (
            api_objects.update()
            .where(_object_of(kind, id_, project), api_objects.c.deleted.is_(False))
            .values(deleted=True)
        )
        return await self.db.write(lambda conn: bool(conn.execute(update).rowcount))


def _object_of(kind: str, id_: str, project: str) -> sa.ColumnElement[bool]:
    """The row of ``kind`` and ``id_`` that belongs to ``project`` (live or deleted)."""
    return sa.and_(
        api_objects.c.kind == kind, api_objects.c.id == id_, api_objects.c.project == project
    )
