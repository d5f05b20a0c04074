"""Migration 0002 goes up, down to 0001 (leaving 0001's tables intact) and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from core.store import Store, db
from core.tools.file_search import index_file, search
from tests.file_search.conftest import AddFile

SEARCH_TABLES = {"search_documents", "search_chunks"}


async def _downgrade(store: Store, revision: str) -> None:
    def run(sync_conn: sa.Connection) -> None:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(run)


async def _schema_objects(store: Store) -> set[str]:
    """Tables plus, on SQLite, the FTS table and triggers (which the inspector does not list)."""

    def names(sync_conn: sa.Connection) -> set[str]:
        found = set(sa.inspect(sync_conn).get_table_names())
        if sync_conn.dialect.name == "sqlite":
            found |= set(
                sync_conn.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
            )
        return found

    async with store.engine.connect() as conn:
        return await conn.run_sync(names)


async def test_downgrade_removes_search_and_upgrade_restores_it(
    store: Store, add_file: AddFile
) -> None:
    thread = await store.get_or_create_thread("console:migrate")
    ref = await add_file(thread, "list.txt", "玫瑰 每支 5 元")
    await index_file(store, ref)

    await _downgrade(store, "0001")
    assert await db.current_revision(store.engine) == "0001"
    left = await _schema_objects(store)
    assert not {n for n in left if n.startswith("search_")}
    # 0001's data is untouched.
    assert [f.id for f in await store.list_files(thread.id)] == [ref.id]

    await db.upgrade(store.engine)
    # Back at the head of the chain (later migrations come after 0002).
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert await db.current_revision(store.engine) == head
    assert SEARCH_TABLES <= await _schema_objects(store)
    assert await search(store, thread.id, "玫瑰") == []  # index starts empty again
    assert await index_file(store, ref) == 1
    assert [h.file_id for h in await search(store, thread.id, "玫瑰")] == [ref.id]


async def test_backend_specific_index_exists(store: Store) -> None:
    objects = await _schema_objects(store)
    if store.dialect == "sqlite":
        assert {"search_chunks_fts", "search_chunks_ai", "search_chunks_ad"} <= objects
    else:
        async with store.engine.connect() as conn:
            method = (
                await conn.execute(
                    sa.text(
                        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                        "WHERE c.relname = 'ix_search_chunks_tsv' "
                        "AND pg_table_is_visible(c.oid)"
                    )
                )
            ).scalar_one()
        assert method == "gin"
