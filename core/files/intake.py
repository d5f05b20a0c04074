"""File intake: what a person attaches, checked, decoded and stored once.

:class:`FileIntake` refuses what cannot be read (:func:`~core.files.sniff.sniff_kind`, the
table and PDF readers), stores the bytes content-addressed (``files/<sha[:2]>/<sha>``) and one
:class:`~core.domain.FileRef` row per thread, with a short summary for the model. The parsing
runs in a worker thread so a 50 MB upload does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.domain import FileRef, new_id
from core.errors import FileRejected
from core.files.names import human_size, sanitize_name
from core.files.sniff import MIME_JSON, MIME_MD, Kind, decode_bytes, sniff_kind
from core.files.summary import image_summary, text_summary
from core.files.text import pdf_pages
from core.store import Store

log = logging.getLogger(__name__)

OnIngested = Callable[[FileRef], Awaitable[None]]


@dataclass(slots=True)
class _Checked:
    kind: Kind
    mime: str
    summary: str


def _check(data: bytes, name: str, preview_rows: int) -> _Checked:
    """Everything that can refuse a file, before a byte is written."""
    kind, mime = sniff_kind(data, name)
    if kind == "table":
        # pandas is imported only when a table arrives, so model-free commands start fast.
        from core.files.scan import summarize_bytes

        summary = summarize_bytes(data, name, mime, preview_rows)
    elif kind == "text":
        text, encoding = decode_bytes(data)
        label = {MIME_JSON: "JSON", MIME_MD: "Markdown"}.get(mime, "text")
        summary = text_summary(text, name, f"{label}, encoding {encoding}")
    elif kind == "pdf":
        try:
            pages = pdf_pages(data)
        except Exception as exc:  # pypdf: page-level errors surface only when reading text
            raise FileRejected(
                f"{name} is a damaged PDF ({exc}).", zh=f"{name} 是损坏的 PDF（{exc}）。"
            ) from exc
        text = "\n".join(pages)
        label = f"PDF, {len(pages)} pages"
        if not text.strip():
            label += ", no text layer (scanned?)"
        summary = text_summary(text, name, label)
    else:
        summary = image_summary(data, name, mime)
    return _Checked(kind, mime, summary)


def _write_blob(root: Path, sha: str, data: bytes) -> Path:
    """Store the bytes once under ``root/<sha[:2]>/<sha>``; atomic, so a crash leaves no half."""
    target = root / sha[:2] / sha
    if target.exists() and target.stat().st_size == len(data):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, ext = os.path.splitext(name)
    n = 2
    while f"{stem} ({n}){ext}" in taken:
        n += 1
    return f"{stem} ({n}){ext}"


class FileIntake:
    """Checks, stores and records files people attach to a thread.

    ``on_ingested`` hooks run after a new file is stored (file search indexes it there); a
    failing hook is logged and does not undo the upload.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        on_ingested: list[OnIngested] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_ingested: list[OnIngested] = list(on_ingested or [])
        # Held only around "is it there yet? then insert", so two uploads of the same bytes to
        # one thread at once make one row; the slow parsing runs outside it.
        self._insert_lock = asyncio.Lock()

    async def ingest(self, thread_id: str, name: str, data: bytes) -> FileRef:
        """Check ``data``, store it once on disk and once per thread; return its FileRef.

        Raises :class:`FileRejected` (too large, empty, wrong type, unreadable) and then stores
        nothing. The same bytes sent again to the same thread return the existing FileRef.
        """
        safe = sanitize_name(name)
        limit = self.settings.file_max_bytes
        if len(data) > limit:
            raise FileRejected(
                f"{safe} is {human_size(len(data))}; the limit is {human_size(limit)}. "
                "Send a smaller file (e.g. one month, or only the needed columns).",
                zh=f"{safe} 大小为 {human_size(len(data))}，超过上限 {human_size(limit)}。"
                "请发送更小的文件（例如只含一个月或所需的列）。",
            )
        sha = hashlib.sha256(data).hexdigest()
        found = await self._existing(thread_id, sha)
        if found is not None:
            return found
        checked = await asyncio.to_thread(_check, data, safe, self.settings.preview_rows)
        async with self._insert_lock:
            found = await self._existing(thread_id, sha)
            if found is not None:
                return found
            path = await asyncio.to_thread(
                _write_blob, self.settings.files_dir.resolve(), sha, data
            )
            taken = {r.name for r in await self.store.list_files(thread_id)}
            ref = FileRef(
                id=new_id("file"),
                thread_id=thread_id,
                # Two different files called sales.csv stay apart for the model and sandbox.
                name=_unique_name(safe, taken),
                path=str(path),
                sha256=sha,
                size=len(data),
                mime=checked.mime,
                kind=checked.kind,
                summary=checked.summary,
            )
            await self.store.add_file(ref)
        for hook in self.on_ingested:
            try:
                await hook(ref)
            except Exception:
                log.exception("on_ingested hook failed for %s (%s)", ref.name, ref.id)
        return ref

    async def _existing(self, thread_id: str, sha: str) -> FileRef | None:
        for ref in await self.store.list_files(thread_id):
            if ref.sha256 == sha:
                return ref
        return None
