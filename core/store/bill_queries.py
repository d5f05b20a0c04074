"""The statements of the bills aggregate, each on a connection the caller's transaction owns.

Row-to-value mapping lives here too, so :mod:`core.store.bills` reads as whole operations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.bills.books import place_book
from core.bills.catalog import Prices
from core.bills.model import (
    Actor,
    Bill,
    BillHead,
    Change,
    LineItem,
    Revision,
    bill_not_found,
    totals,
)
from core.errors import NotFound
from core.store.tables import bill_revisions, bills, book_prices, threads


def thread_row(conn: sa.Connection, thread_id: str) -> Any:
    row = conn.execute(
        sa.select(threads.c.id, threads.c.key, threads.c.current_bill_id, threads.c.book).where(
            threads.c.id == thread_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no thread {thread_id}", zh=f"没有对话 {thread_id}")
    return row


def book_of(row: Any) -> str:
    """A thread row's book; a row written without one belongs to its key's place."""
    return str(row.book) if row.book else place_book(row.key)


def thread_book(conn: sa.Connection, thread_id: str) -> str:
    return book_of(thread_row(conn, thread_id))


def bill_for_write(conn: sa.Connection, thread_id: str, bill_id: int | None) -> BillHead:
    thread = thread_row(conn, thread_id)
    if bill_id is None:
        bill_id = thread.current_bill_id
        if bill_id is None:
            raise bill_not_found(None)
    # FOR UPDATE serialises writers of one bill on PostgreSQL; SQLite locks the whole file.
    row = conn.execute(
        sa.select(bills.c.id, bills.c.revision, bills.c.voided)
        .where(bills.c.id == bill_id, bills.c.book == book_of(thread))
        .with_for_update()
    ).first()
    if row is None:
        raise bill_not_found(bill_id)
    return BillHead(id=row.id, revision=row.revision, voided=bool(row.voided))


def latest_items(conn: sa.Connection, bill_id: int | None) -> list[LineItem]:
    if bill_id is None:
        return []
    data = conn.execute(
        sa.select(bill_revisions.c["items"])
        .select_from(
            bill_revisions.join(
                bills,
                sa.and_(
                    bills.c.id == bill_revisions.c.bill_id,
                    bills.c.revision == bill_revisions.c.revision,
                ),
            )
        )
        .where(bills.c.id == bill_id)
    ).scalar()
    return [LineItem.from_stored(i) for i in data or []]


def revisions(conn: sa.Connection, bill_id: int) -> list[Revision]:
    rows = conn.execute(
        sa.select(bill_revisions)
        .where(bill_revisions.c.bill_id == bill_id)
        .order_by(bill_revisions.c.revision)
    ).all()
    return [
        Revision(
            revision=r.revision,
            reason=r.reason,
            note=r.note,
            voided=bool(r.voided),
            items=[LineItem.from_stored(i) for i in r.items],
            cost=r.cost,
            revenue=r.revenue,
            profit=r.profit,
            run_id=r.run_id,
            call_id=r.tool_call_id,
            created_at=r.created_at,
            actor=Actor(r.actor, r.actor_name) if r.actor else None,
        )
        for r in rows
    ]


def day_bill(conn: sa.Connection, book: str, date: str, currency: str) -> BillHead | None:
    """The book's live bill of a date and currency (the newest, if a migration left two)."""
    row = conn.execute(
        sa.select(bills.c.id, bills.c.revision, bills.c.voided)
        .where(
            bills.c.book == book,
            bills.c.date == date,
            bills.c.currency == currency,
            bills.c.voided.is_(False),
        )
        .order_by(bills.c.id.desc())
        .limit(1)
        .with_for_update()
    ).first()
    return None if row is None else BillHead(id=row.id, revision=row.revision, voided=False)


def insert_revision(
    conn: sa.Connection,
    bill_id: int,
    revision: int,
    change: Change,
    reason: str,
    note: str | None,
    run_id: str | None,
    call_id: str | None,
    now: datetime,
    actor: Actor | None = None,
) -> None:
    cost, revenue, profit = totals(change.items)
    keyed = bool(run_id and call_id)
    conn.execute(
        bill_revisions.insert().values(
            bill_id=bill_id,
            revision=revision,
            items=[i.to_stored() for i in change.items],
            cost=cost,
            revenue=revenue,
            profit=profit,
            voided=change.voided,
            reason=reason,
            note=note,
            run_id=run_id if keyed else None,
            tool_call_id=call_id if keyed else None,
            created_at=now,
            actor=None if actor is None else actor.id[:200],
            actor_name=None if actor is None or not actor.name else actor.name[:200],
        )
    )


def bump(conn: sa.Connection, bill_id: int, revision: int, voided: bool, now: datetime) -> None:
    conn.execute(
        bills.update()
        .where(bills.c.id == bill_id)
        .values(revision=revision, voided=voided, updated_at=now)
    )


def set_current(conn: sa.Connection, thread_id: str, bill_id: int, now: datetime) -> None:
    conn.execute(
        threads.update()
        .where(threads.c.id == thread_id)
        .values(current_bill_id=bill_id, updated_at=now)
    )


def revision_for_call(
    conn: sa.Connection, run_id: str | None, call_id: str | None
) -> tuple[int, int] | None:
    row = conn.execute(
        sa.select(bill_revisions.c.bill_id, bill_revisions.c.revision).where(
            bill_revisions.c.run_id == run_id, bill_revisions.c.tool_call_id == call_id
        )
    ).first()
    return None if row is None else (row.bill_id, row.revision)


def snapshot_query() -> sa.Select[Any]:
    return sa.select(
        bills.c.id,
        bills.c.book,
        bills.c.thread_id,
        threads.c.key.label("thread_key"),
        bills.c.date,
        bills.c.currency,
        bills.c.created_at,
        bill_revisions.c.revision,
        bill_revisions.c["items"],
        bill_revisions.c.voided,
        bill_revisions.c.created_at.label("revised_at"),
    ).select_from(bills.join(threads, threads.c.id == bills.c.thread_id))


def bill_from_row(row: Any) -> Bill:
    items = [LineItem.from_stored(i) for i in row.items]
    # Recomputed, not read from the stored totals: the items are the source of truth.
    cost, revenue, profit = totals(items)
    return Bill(
        id=row.id,
        thread_id=row.thread_id,
        thread_key=row.thread_key,
        date=row.date,
        currency=row.currency,
        revision=row.revision,
        items=items,
        cost=cost,
        revenue=revenue,
        profit=profit,
        voided=bool(row.voided),
        created_at=row.created_at,
        updated_at=row.revised_at,
        book=row.book,
    )


def snapshot(conn: sa.Connection, bill_id: int, revision: int) -> Bill:
    row = conn.execute(
        snapshot_query()
        .join(bill_revisions, bill_revisions.c.bill_id == bills.c.id)
        .where(bills.c.id == bill_id, bill_revisions.c.revision == revision)
    ).first()
    if row is None:
        raise bill_not_found(bill_id)
    return bill_from_row(row)


def catalog(conn: sa.Connection, book: str) -> Prices:
    rows = conn.execute(
        sa.select(book_prices.c.name, book_prices.c.unit_cost, book_prices.c.unit_price).where(
            book_prices.c.book == book
        )
    ).all()
    return {r.name: (r.unit_cost, r.unit_price) for r in rows}


def learn(conn: sa.Connection, book: str, prices: Prices, source: str, now: datetime) -> None:
    """Upsert catalog rows; a None field keeps the value already known."""
    rows = [
        {
            "book": book,
            "name": key,
            "unit_cost": cost,
            "unit_price": price,
            "source": source,
            "updated_at": now,
        }
        for key, (cost, price) in prices.items()
        if cost is not None or price is not None
    ]
    if not rows:
        return
    if conn.dialect.name in ("sqlite", "postgresql"):
        _upsert_prices(conn, rows)
        return
    for row in rows:  # other backends: plain read-then-write inside the caller's transaction
        known = conn.execute(
            sa.select(book_prices.c.unit_cost, book_prices.c.unit_price).where(
                book_prices.c.book == book, book_prices.c.name == row["name"]
            )
        ).first()
        if known is None:
            conn.execute(book_prices.insert().values(**row))
            continue
        conn.execute(
            book_prices.update()
            .where(book_prices.c.book == book, book_prices.c.name == row["name"])
            .values(
                unit_cost=row["unit_cost"] if row["unit_cost"] is not None else known.unit_cost,
                unit_price=row["unit_price"] if row["unit_price"] is not None else known.unit_price,
                source=source,
                updated_at=now,
            )
        )


def _upsert_prices(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    # Both dialects spell the upsert the same way (ON CONFLICT ... DO UPDATE).
    insert: Any = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    stmt = insert(book_prices).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[book_prices.c.book, book_prices.c.name],
        set_={
            "unit_cost": sa.func.coalesce(stmt.excluded.unit_cost, book_prices.c.unit_cost),
            "unit_price": sa.func.coalesce(stmt.excluded.unit_price, book_prices.c.unit_price),
            "source": stmt.excluded.source,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(stmt)
