"""File references: what a thread was sent, where it is stored, and its summary."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain import FileRef
from core.errors import NotFound
from core.store.tables import files


class FilesRepo:
    """Add, list and fetch the :class:`~core.domain.FileRef` rows of threads."""

    engine: AsyncEngine

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
        async with self.engine.begin() as conn:
            await conn.execute(
                files.insert().values(
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
            )
        return ref

    async def list_files(self, thread_id: str) -> list[FileRef]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(files)
                    .where(files.c.thread_id == thread_id)
                    .order_by(files.c.created_at)
                )
            ).all()
        return [self._file(r) for r in rows]

    async def get_file(self, file_id: str) -> FileRef:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(files).where(files.c.id == file_id))).first()
        if row is None:
            raise NotFound(f"no file {file_id}")
        return self._file(row)
