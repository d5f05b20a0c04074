"""File-search fixtures: ``store`` on SQLite and on PostgreSQL (one throwaway schema per test).

The PostgreSQL variant gets a throwaway schema per test (see :mod:`tests.pg`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from core.config import Settings
from core.domain import FileRef, Thread, new_id
from core.store import Store
from core.tools.base import ToolContext


@pytest.fixture
def store(any_store: Store) -> Store:
    """A migrated store on each backend (overrides the SQLite-only root fixture)."""
    return any_store


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
