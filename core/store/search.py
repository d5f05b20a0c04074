"""The full-text search index of a thread's files: passages in, ranked matches out.

:class:`SearchRepo` is mixed into :class:`~core.store.Store`. It stores what file search
(:mod:`core.tools.file_search`) cuts and tokenises; it never segments text itself, so both
backends index exactly the terms Python produced.

Storage (migration 0002): ``search_documents`` (one row per file indexing looked at) and
``search_chunks`` (passages + their segmented ``terms``), an FTS5 table on SQLite and a
generated GIN-indexed tsvector column on PostgreSQL. Query terms are always passed as quoted
literals, so quotes, ``AND``/``NEAR``, ``*`` or parentheses in a question are words, never
syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.domain import utcnow
from core.store.base import Database
from core.store.tables import UTCDateTime, files

# Tables of migration 0002, for queries (SQLAlchemy Core; the migration is the schema's truth,
# and the FTS5 table and tsvector column are not expressible here, hence a metadata of their own).
_metadata = sa.MetaData()

search_documents = sa.Table(
    "search_documents",
    _metadata,
    sa.Column("file_id", sa.String(40), primary_key=True),
    sa.Column("thread_id", sa.String(40), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("indexed_at", UTCDateTime, nullable=False),
)

search_chunks = sa.Table(
    "search_chunks",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_id", sa.String(40), nullable=False),
    sa.Column("thread_id", sa.String(40), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("location", sa.String(100), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("terms", sa.Text, nullable=False),
)

# Both queries return the engine's relevance as ``rank`` (higher is better) and the passage's
# terms, for the re-ranking done by the caller.
_SQLITE_SEARCH = sa.text(
    """
    SELECT c.id, c.file_id, f.name, c.location, c.text, c.terms,
           -bm25(search_chunks_fts) AS rank
    FROM search_chunks_fts
    JOIN search_chunks AS c ON c.id = search_chunks_fts.rowid
    JOIN files AS f ON f.id = c.file_id
    WHERE search_chunks_fts MATCH :match AND c.thread_id = :thread_id
    ORDER BY bm25(search_chunks_fts), c.id
    LIMIT :limit
    """
)

_PG_SEARCH = sa.text(
    """
    SELECT c.id, c.file_id, f.name, c.location, c.text, c.terms,
           ts_rank(c.tsv, q.query) AS rank
    FROM search_chunks AS c
    JOIN files AS f ON f.id = c.file_id
    CROSS JOIN to_tsquery('simple', :match) AS q(query)
    WHERE c.thread_id = :thread_id AND c.tsv @@ q.query
    ORDER BY rank DESC, c.id
    LIMIT :limit
    """
)


@dataclass(frozen=True, slots=True)
class IndexedPassage:
    """One passage to index: where it is, its text, and its search terms (space separated)."""

    location: str
    text: str
    terms: str


@dataclass(frozen=True, slots=True)
class PassageMatch:
    """A passage the engine matched: ``rank`` is its relevance there (higher is better)."""

    id: int
    file_id: str
    name: str
    location: str
    text: str
    terms: str
    rank: float


def _upsert_document(dialect: str, values: dict[str, Any]) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(search_documents).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[search_documents.c.file_id],
        set_={k: stmt.excluded[k] for k in ("thread_id", "chunks", "error", "indexed_at")},
    )


class SearchRepo:
    """The search index's queries; mixed into :class:`~core.store.Store`."""

    db: Database

    async def replace_search_passages(
        self,
        file_id: str,
        thread_id: str,
        passages: Sequence[IndexedPassage],
        error: str | None = None,
    ) -> None:
        """Make ``passages`` the file's whole index entry, in one transaction.

        ``error`` records why a file has no passages (unreadable), so it is not retried.
        """
        rows = [
            {
                "file_id": file_id,
                "thread_id": thread_id,
                "seq": seq,
                "location": p.location,
                "text": p.text,
                "terms": p.terms,
            }
            for seq, p in enumerate(passages)
        ]

        def work(conn: sa.Connection) -> None:
            # The document row first: its row lock serialises concurrent re-indexing of one
            # file, so the delete below always sees the other writer's passages (no duplicates).
            conn.execute(
                _upsert_document(
                    conn.dialect.name,
                    {
                        "file_id": file_id,
                        "thread_id": thread_id,
                        "chunks": len(passages),
                        "error": error,
                        "indexed_at": utcnow(),
                    },
                )
            )
            conn.execute(search_chunks.delete().where(search_chunks.c.file_id == file_id))
            if rows:
                conn.execute(search_chunks.insert(), rows)

        await self.db.write(work)

    async def remove_from_search(self, file_id: str) -> None:
        """Drop a file's passages and leave a tombstone (0 passages, error "removed").

        While the file row exists the tombstone keeps on-demand indexing from bringing the
        file back; it cascades away with the file.
        """

        def work(conn: sa.Connection) -> None:
            thread_id = conn.execute(
                sa.select(files.c.thread_id).where(files.c.id == file_id)
            ).scalar()
            if thread_id is None:
                conn.execute(search_documents.delete().where(search_documents.c.file_id == file_id))
            else:
                conn.execute(
                    _upsert_document(
                        conn.dialect.name,
                        {
                            "file_id": file_id,
                            "thread_id": thread_id,
                            "chunks": 0,
                            "error": "removed",
                            "indexed_at": utcnow(),
                        },
                    )
                )
            conn.execute(search_chunks.delete().where(search_chunks.c.file_id == file_id))

        await self.db.write(work)

    async def search_chunk_counts(self, thread_id: str) -> dict[str, int]:
        """``file_id -> passages`` for every file of the thread that indexing looked at."""
        rows = await self.db.read(
            lambda conn: conn.execute(
                sa.select(search_documents.c.file_id, search_documents.c.chunks).where(
                    search_documents.c.thread_id == thread_id
                )
            ).all()
        )
        return {r.file_id: r.chunks for r in rows}

    async def search_passages(
        self, thread_id: str, terms: Sequence[str], *, limit: int
    ) -> list[PassageMatch]:
        """Up to ``limit`` of the thread's passages containing any of ``terms``, by the
        engine's relevance (FTS5 bm25 on SQLite, ts_rank on PostgreSQL)."""
        if self.db.url.get_backend_name() == "postgresql":
            # Terms are letters/digits only (see file search's segment), and quoted anyway.
            match = " | ".join(
                "'" + t.replace("'", "''").replace("\\", "\\\\") + "'" for t in terms
            )
            stmt = _PG_SEARCH
        else:
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            stmt = _SQLITE_SEARCH
        params = {"match": match, "thread_id": thread_id, "limit": limit}
        rows = await self.db.read(lambda conn: conn.execute(stmt, params).all())
        return [
            PassageMatch(
                id=r.id,
                file_id=r.file_id,
                name=r.name,
                location=r.location,
                text=r.text,
                terms=r.terms,
                rank=float(r.rank),
            )
            for r in rows
        ]
