"""file search: passages of thread files and their full-text index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 12:00:00

Both backends get the same two plain tables:

- ``search_documents``: one row per file that indexing has looked at (with its chunk count and
  the extraction error, if any), so a search can tell "not indexed yet" from "nothing to index".
- ``search_chunks``: the passages, with ``location`` for citations and ``terms``, the text as
  :func:`core.tools.file_search.segment` tokenised it (space separated).

The full-text index differs:

- SQLite: an FTS5 table over ``search_chunks.terms`` (external content, so passages are not
  stored twice), kept in step by triggers. The tokenizer only splits on spaces in practice,
  because ``terms`` is already segmented; ``remove_diacritics 0`` and the ``M*`` category keep
  it from changing tokens that PostgreSQL would leave alone.
- PostgreSQL: a generated ``tsvector`` column (config ``simple``: lower-casing, no stemming,
  no stop words) over the same ``terms``, with a GIN index. Stock PostgreSQL, no extensions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FTS_TOKENIZE = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name

    op.create_table(
        "search_documents",
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("thread_id", sa.String(length=40), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_search_documents_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_search_documents")),
    )
    op.create_index(
        op.f("ix_search_documents_thread_id"), "search_documents", ["thread_id"], unique=False
    )

    columns: list[sa.Column[object]] = [
        # SQLite needs exactly INTEGER PRIMARY KEY for the rowid alias FTS5 points at.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("thread_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
    ]
    if dialect == "postgresql":
        columns.append(
            sa.Column(
                "tsv",
                postgresql.TSVECTOR(),
                sa.Computed("to_tsvector('simple'::regconfig, terms)", persisted=True),
                nullable=False,
            )
        )
    op.create_table(
        "search_chunks",
        *columns,
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_search_chunks_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_chunks")),
        sa.UniqueConstraint("file_id", "seq", name=op.f("uq_search_chunks_file_id")),
    )
    # Every search filters by thread first; file_id is covered by the unique constraint.
    op.create_index(
        op.f("ix_search_chunks_thread_id"), "search_chunks", ["thread_id"], unique=False
    )

    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_chunks_fts USING fts5("
            "terms, content='search_chunks', content_rowid='id', "
            f'tokenize="{_FTS_TOKENIZE}")'
        )
        # Triggers rather than application code, so a cascade from files/threads (which never
        # passes through Python) cannot leave stale entries in the index.
        op.execute(
            "CREATE TRIGGER search_chunks_ai AFTER INSERT ON search_chunks BEGIN "
            "INSERT INTO search_chunks_fts(rowid, terms) VALUES (new.id, new.terms); END"
        )
        op.execute(
            "CREATE TRIGGER search_chunks_ad AFTER DELETE ON search_chunks BEGIN "
            "INSERT INTO search_chunks_fts(search_chunks_fts, rowid, terms) "
            "VALUES ('delete', old.id, old.terms); END"
        )
        op.execute(
            "CREATE TRIGGER search_chunks_au AFTER UPDATE ON search_chunks BEGIN "
            "INSERT INTO search_chunks_fts(search_chunks_fts, rowid, terms) "
            "VALUES ('delete', old.id, old.terms); "
            "INSERT INTO search_chunks_fts(rowid, terms) VALUES (new.id, new.terms); END"
        )
    elif dialect == "postgresql":
        op.create_index("ix_search_chunks_tsv", "search_chunks", ["tsv"], postgresql_using="gin")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("search_chunks_au", "search_chunks_ad", "search_chunks_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_chunks_fts")
    elif dialect == "postgresql":
        op.drop_index("ix_search_chunks_tsv", table_name="search_chunks")
    op.drop_index(op.f("ix_search_chunks_thread_id"), table_name="search_chunks")
    op.drop_table("search_chunks")
    op.drop_index(op.f("ix_search_documents_thread_id"), table_name="search_documents")
    op.drop_table("search_documents")
