"""books: bills, prices and threads belong to the book of a place; revisions record who

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:00:00

- ``threads.book`` and ``bills.book`` (indexed with the date): the book key, derived here from
  the thread key exactly as :func:`core.bills.books.place_book` does today (copied, because a
  migration must not change when that code does).
- ``book_prices`` replaces the per-thread ``price_catalog`` (left in place, no longer read):
  prices of threads of one place are merged, the most recently learnt value of each field wins.
- ``bill_revisions.actor`` / ``actor_name``: who made a revision (NULL for older ones).

No bill is merged: two bills of one date that land in one book stay two bills
(``tallybot bills list`` flags them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _place_book(thread_key: str) -> str:
    key = thread_key.split("#archived:", 1)[0]
    parts = key.split(":")
    if parts[0] == "slack" and len(parts) >= 3:
        return ":".join(parts[:3])
    if parts[0] == "telegram" and len(parts) >= 2:
        return ":".join(parts[:2])
    if parts[0] == "console":
        return "console:default"
    return key


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (SQLite >= 3.35 has both): no table is rebuilt, no FK is touched.
    op.add_column("threads", sa.Column("book", sa.String(length=300), nullable=True))
    op.add_column("bills", sa.Column("book", sa.String(length=300), nullable=True))
    op.create_index("ix_bills_book_date", "bills", ["book", "date"], unique=False)
    op.add_column("bill_revisions", sa.Column("actor", sa.String(length=200), nullable=True))
    op.add_column("bill_revisions", sa.Column("actor_name", sa.String(length=200), nullable=True))
    op.create_table(
        "book_prices",
        sa.Column("book", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_cost", sa.String(length=40), nullable=True),
        sa.Column("unit_price", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("book", "name", name=op.f("pk_book_prices")),
    )
    _move_into_books()


def _move_into_books() -> None:
    conn = op.get_bind()
    threads = sa.table("threads", sa.column("id"), sa.column("key"), sa.column("book"))
    bills = sa.table("bills", sa.column("thread_id"), sa.column("book"))
    books: dict[str, str] = {}
    for row in conn.execute(sa.select(threads.c.id, threads.c.key)).all():
        books[row.id] = _place_book(row.key)
        conn.execute(threads.update().where(threads.c.id == row.id).values(book=books[row.id]))
        conn.execute(bills.update().where(bills.c.thread_id == row.id).values(book=books[row.id]))
    old = sa.table(
        "price_catalog",
        sa.column("thread_id"),
        sa.column("name"),
        sa.column("unit_cost"),
        sa.column("unit_price"),
        sa.column("source"),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    merged: dict[tuple[str, str], dict[str, object]] = {}
    # Oldest first, so a later price of the same item in the same book overwrites an earlier one.
    for row in conn.execute(sa.select(old).order_by(old.c.updated_at)).all():
        book = books.get(row.thread_id)
        if book is None:
            continue
        entry = merged.setdefault(
            (book, row.name),
            {"book": book, "name": row.name, "unit_cost": None, "unit_price": None},
        )
        for field in ("unit_cost", "unit_price"):
            if getattr(row, field) is not None:
                entry[field] = getattr(row, field)
        entry["source"] = row.source
        entry["updated_at"] = row.updated_at
    if merged:
        new = sa.table(
            "book_prices",
            *(sa.column(c) for c in ("book", "name", "unit_cost", "unit_price", "source")),
            sa.column("updated_at", sa.DateTime(timezone=True)),
        )
        conn.execute(new.insert(), list(merged.values()))


def downgrade() -> None:
    op.drop_table("book_prices")
    op.drop_column("bill_revisions", "actor_name")
    op.drop_column("bill_revisions", "actor")
    op.drop_index("ix_bills_book_date", table_name="bills")
    op.drop_column("bills", "book")
    op.drop_column("threads", "book")
