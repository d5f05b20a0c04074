"""File-search fixtures: ``store`` on SQLite and on PostgreSQL (one throwaway schema per test).

The PostgreSQL variant needs the server at 127.0.0.1:5432 (trust auth, database ``test``); it is
skipped, with the reason, when that server is not there. Each test gets its own schema with the
migrations applied through a ``search_path`` connection setting, dropped afterwards; schemas left
by a killed test process (its pid is in the name) are dropped by the next run.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from core.config import Settings
from core.domain import FileRef, Thread, new_id
from core.store import Store, db
from core.tools.base import ToolContext

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "tallybot_fs_test_"
_SCHEMA_RE = re.compile(rf"^{SCHEMA_PREFIX}(\d+)_[0-9a-f]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def _drop_stale_schemas(admin: AsyncEngine) -> None:
    async with admin.begin() as conn:
        names = (
            await conn.execute(
                sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": SCHEMA_PREFIX + "%"},
            )
        ).scalars()
        for name in list(names):
            m = _SCHEMA_RE.match(name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


async def open_pg_schema(schema: str, *, migrate: bool = True) -> Store:
    """A Store whose connections all use ``schema`` (created beforehand) as search_path."""
    engine = create_async_engine(
        PG_URL,
        poolclass=NullPool,  # no connection outlives the test's event loop
        connect_args={"server_settings": {"search_path": schema}},
    )
    if migrate:
        await db.upgrade(engine)
    return Store(engine)


async def _pg_store() -> AsyncIterator[Store]:
    admin = create_async_engine(PG_URL, poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 not available: {exc}")
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
    store: Store | None = None
    try:
        await _drop_stale_schemas(admin)
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        store = await open_pg_schema(schema)
        yield store
    finally:
        if store is not None:
            await store.close()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """A migrated store on each backend (overrides the SQLite-only root fixture)."""
    if request.param == "sqlite":
        st = await Store.open(settings.db_url)
        try:
            yield st
        finally:
            await st.close()
    else:
        async for st in _pg_store():
            yield st


AddFile = Callable[..., Awaitable[FileRef]]


@pytest.fixture
def add_file(settings: Settings, store: Store) -> AddFile:
    """``await add_file(thread, name, data, kind=..., mime=...)``: a stored file on disk."""

    async def add(
        thread: Thread,
        name: str,
        data: bytes | str,
        *,
        kind: str = "text",
        mime: str = "text/plain",
    ) -> FileRef:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        path = Path(settings.files_dir) / f"{digest}-{name}"
        path.write_bytes(raw)
        ref = FileRef(
            id=new_id("file"),
            thread_id=thread.id,
            name=name,
            path=str(path),
            sha256=digest,
            size=len(raw),
            mime=mime,
            kind=kind,
        )
        return await store.add_file(ref)

    return add


@pytest.fixture
def make_ctx(settings: Settings, store: Store) -> Callable[[Thread], ToolContext]:
    """A tool context for one call in ``thread``."""

    def make(thread: Thread) -> ToolContext:
        return ToolContext(
            settings=settings,
            store=store,
            thread=thread,
            run_id=new_id("run"),
            call_id=new_id("call"),
        )

    return make


def make_pdf(pages: list[str]) -> bytes:
    """A minimal, valid PDF: one Helvetica text object per page, one line per ``\\n``."""

    def esc(line: str) -> bytes:
        return (
            line.encode("latin-1")
            .replace(b"\\", b"\\\\")
            .replace(b"(", b"\\(")
            .replace(b")", b"\\)")
        )

    page_ids = [4 + 2 * i for i in range(len(pages))]
    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % p for p in page_ids)
        + b"] /Count %d >>" % len(pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for pid, text in zip(page_ids, pages, strict=True):
        stream = (
            b"BT /F1 12 Tf 14 TL 72 720 Td "
            + b" ".join(b"(" + esc(line) + b") Tj T*" for line in text.split("\n"))
            + b" ET"
        )
        objs[pid] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (pid + 1)
        )
        objs[pid + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n")
    offsets: dict[int, int] = {}
    for key in sorted(objs):
        offsets[key] = len(out)
        out += b"%d 0 obj\n" % key + objs[key] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[k] for k in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)
