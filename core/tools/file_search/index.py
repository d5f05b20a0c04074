"""The search index of a thread's files: (re-)indexing, removal, and ranked search.

The SQL lives in :class:`~core.store.search.SearchRepo`; here are the rules on top of it: what
is indexed (:mod:`~core.tools.file_search.chunks`), with which terms
(:mod:`~core.tools.file_search.segment`), and how matches are ordered (:func:`search`). Files
that were never indexed (uploaded before file search was on, or an indexing hook that failed)
are indexed on the first search (:func:`index_missing`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.store.search import IndexedPassage
from core.tools.file_search.chunks import passages_for
from core.tools.file_search.segment import query_terms, segment

if TYPE_CHECKING:
    from core.domain import FileRef
    from core.store import Store

log = logging.getLogger(__name__)

DEFAULT_RESULTS = 5
MAX_RESULTS = 20
# Files indexed on demand by one search call; later calls pick up the rest.
MAX_LAZY_INDEX = 20
# Passages the engine ranks first that are then re-ranked in Python.
_CANDIDATES = 200


async def index_file(store: Store, ref: FileRef, text: str | None = None) -> int:
    """(Re-)index one stored file; returns the number of passages now searchable.

    ``ref`` must already be in the store's ``files`` table. With ``text`` the file is not read.
    Idempotent: re-indexing replaces the file's passages in one transaction. A file that cannot
    be read or parsed indexes as 0 passages with the reason recorded (and logged) rather than
    raising, because this runs as an upload hook where a failure must not lose the upload.
    """
    error: str | None = None
    try:
        # pypdf and charset detection are CPU-bound: keep them off the event loop.
        passages = await asyncio.to_thread(passages_for, ref, text)
    except Exception as exc:  # pypdf raises many types; every one means "not searchable"
        log.warning("file_search: cannot extract text from %s (%s): %s", ref.name, ref.id, exc)
        passages, error = [], f"{type(exc).__name__}: {exc}"[:500]
    await store.replace_search_passages(
        ref.id,
        ref.thread_id,
        [IndexedPassage(p.location, p.text, " ".join(segment(p.text))) for p in passages],
        error,
    )
    return len(passages)


async def remove_file(store: Store, file_id: str) -> None:
    """Take a file out of search: its passages go, and it stays out until indexed again.

    While the file row exists a tombstone (0 passages, error "removed") stays behind, so the
    on-demand indexing of a search does not bring the file back; it cascades away with the file.
    """
    await store.remove_from_search(file_id)


async def index_missing(store: Store, thread_id: str, *, limit: int = MAX_LAZY_INDEX) -> int:
    """Index the thread's files that indexing never looked at; returns how many it indexed."""
    done = set(await store.search_chunk_counts(thread_id))
    pending = [ref for ref in await store.list_files(thread_id) if ref.id not in done]
    for ref in pending[:limit]:
        await index_file(store, ref)
    return min(len(pending), limit)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a passage of a file, with its relevance (higher is better)."""

    file: str
    file_id: str
    location: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "file_id": self.file_id,
            "location": self.location,
            "text": self.text,
            "score": self.score,
        }


async def search(
    store: Store, thread_id: str, query: str, *, limit: int = DEFAULT_RESULTS
) -> list[Hit]:
    """The best passages for ``query`` among ``thread_id``'s indexed files, best first.

    The engine (FTS5 bm25 / ts_rank) finds passages with any query term; they are then
    ordered by how many distinct query terms they contain, and by the engine's relevance
    within that. Coverage comes first because bm25's statistics are global and nearly flat in
    a small index, and because the two engines' scores are not comparable; coverage gives
    the same order on both. ``score`` is that order as a number: the count of matched terms
    plus a fraction (0..1) for the engine's relevance.

    ``limit`` is clamped to 1..MAX_RESULTS. Any text is a valid query: terms are quoted
    literals, so search syntax in it is matched as words, never interpreted.
    """
    terms = query_terms(query)
    if not terms:
        return []
    limit = max(1, min(int(limit), MAX_RESULTS))
    rows = await store.search_passages(thread_id, terms, limit=_CANDIDATES)
    ranked = []
    for r in rows:
        present = set(r.terms.split())
        matched = sum(t in present for t in terms)
        relevance = max(r.rank, 0.0)
        # e / (1 + e) maps any engine score into 0..1, capped so rounding cannot reach 1.
        fraction = min(relevance / (1.0 + relevance), 0.9999)
        ranked.append((matched, relevance, -r.id, r, round(matched + fraction, 4)))
    ranked.sort(key=lambda item: item[:3], reverse=True)
    return [
        Hit(file=r.name, file_id=r.file_id, location=r.location, text=r.text, score=score)
        for _, _, _, r, score in ranked[:limit]
    ]
