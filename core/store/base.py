"""The engine holder every repository mixin of :class:`core.store.store.Store` shares."""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from core.store.db import create_engine, upgrade


class StoreBase:
    """Owns the async engine: open (with migrations), close, and the dialect name."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Self:
        """Connect to ``url`` and, unless ``migrate`` is False, apply migrations first."""
        engine = create_engine(url)
        if migrate:
            await upgrade(engine)
        return cls(engine)

    async def close(self) -> None:
        """Dispose of the engine's connection pool."""
        await self.engine.dispose()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: the few queries that differ by backend branch on it."""
        return self.engine.dialect.name
