"""The migrated schema is what core/store/tables.py declares: a table, column or index added
to one and not the other is caught here (alembic's compare_metadata)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core.store import Store
from core.store.tables import metadata


def _diff(conn: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_object": lambda obj, name, type_, reflected, compare_to: (
                not (type_ == "table" and name and name.startswith("search_"))
            )
        },
    )
    return list(compare_metadata(context, metadata))


async def test_schema_matches_tables(any_store: Store) -> None:
    assert await any_store.db.read(_diff) == []
