"""core.store.db.HEAD names Alembic's head, and a database at it opens without Alembic."""

from __future__ import annotations

import subprocess
import sys

from core.config import Settings
from core.store import Store, db


def test_head_constant_is_the_newest_migration() -> None:
    assert db.HEAD == db.head_revision()


async def test_a_database_at_head_opens_without_importing_alembic(settings: Settings) -> None:
    st = await Store.open(settings.db_url)  # creates and migrates the file
    await st.close()
    code = (
        "import asyncio, sys\n"
        "from core.store import Store\n"
        "async def main():\n"
        f"    st = await Store.open({settings.db_url!r})\n"
        "    await st.close()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_a_new_database_is_still_migrated(settings: Settings) -> None:
    st = await Store.open(settings.db_url)
    try:
        assert await db.current_revision(st.engine) == db.HEAD
        await st.get_or_create_thread("console:new")
    finally:
        await st.close()
