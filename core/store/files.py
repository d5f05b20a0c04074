"""File references: what a thread was sent, where it is stored, and its summary."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.domain import FileRef
from core.errors import NotFound
from core.store.base import Database
from core.store.tables import files


class FilesRepo:
    """Add, list and fetch the :class:`~core.domain.FileRef` rows of threads."""

    db: Database

    @staticmethod
    def _file(row: Any) -> FileRef:
        return FileRef(
            id=row.id,
            thread_id=row.thread_id,
            name=row.name,
            path=row.path,
            sha256=row.sha256,
            size=row.size,
            mime=row.mime,
            kind=row.kind,
            summary=row.summary,
            created_at=row.created_at,
        )

    async def add_file(self, ref: FileRef) -> FileRef:
        insert = files.insert().values(
            id=ref.id,
            thread_id=ref.thread_id,
            name=ref.name,
            path=ref.path,
            sha256=ref.sha256,
            size=ref.size,
            mime=ref.mime,
            kind=ref.kind,
            summary=ref.summary,
            created_at=ref.created_at,
        )
        await self.db.write(lambda conn: conn.execute(insert))
        return ref

    async def list_files(self, thread_id: str) -> list[FileRef]:
        q = sa.select(files).where(files.c.thread_id == thread_id).order_by(files.c.created_at)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [self._file(r) for r in rows]

    async def get_file(self, file_id: str) -> FileRef:
        q = sa.select(files).where(files.c.id == file_id)
        row = await self.db.read(lambda conn: conn.execute(q).first())
        if row is None:
            raise NotFound(f"no file {file_id}")
        return self._file(row)
