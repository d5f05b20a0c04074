"""The bills aggregate: bills, their append-only revisions, and each book's price catalog.

Each public method is one whole operation in one transaction. A write takes a pure function
from :mod:`core.bills.ledger` that decides the new revision's lines from what the transaction
read, so validation and price filling stay in the ledger while the reads, the revision, the
idempotency key ``(run_id, call_id)``, the thread's current-bill pointer and the learned
prices commit or roll back together. Writers racing for one revision number are retried.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import core.store.bill_queries as sql
from core.bills.catalog import Prices, prices_of
from core.bills.model import (
    UNDO,
    Actor,
    Bill,
    BillHead,
    Change,
    LineItem,
    Revision,
    bill_not_found,
)
from core.errors import ToolError
from core.store.base import Database
from core.store.tables import bill_revisions, bills, threads

_WRITE_ATTEMPTS = 5

NewLines = Callable[[Prices, list[LineItem]], list[LineItem]]
"""``(thread catalog, current bill's lines) -> lines of a new bill``."""
RevisedLines = Callable[[BillHead, list[LineItem], Prices], list[LineItem]]
"""``(bill, its latest lines, thread catalog) -> lines of its next revision``."""
Undone = Callable[[BillHead, list[Revision]], Change]
"""``(bill, all its revisions oldest first) -> what undoing the last change leaves``."""
_Work = Callable[[sa.Connection], tuple[int, int]]


class BillsRepo:
    """Bills, revisions and price catalog on :attr:`db`; mixed into :class:`Store`."""

    db: Database

    # --- writes ----------------------------------------------------------------------------

    async def write_day_bill(
        self,
        thread_id: str,
        lines: NewLines,
        *,
        date: str,
        currency: str,
        reason: str,
        note: str | None,
        run_id: str | None,
        call_id: str | None,
        actor: Actor | None = None,
    ) -> Bill:
        """Save the book's bill of ``date`` and ``currency``; make it the thread's current bill.

        One bill per book, date and currency: when the book has one, this is its next revision
        (the items replace the old ones, so undo brings them back); otherwise a new bill at
        revision 1. Either way its prices are learnt into the book's catalog.
        """

        def work(conn: sa.Connection) -> tuple[int, int]:
            thread = sql.thread_row(conn, thread_id)
            book = sql.book_of(thread)
            current = sql.latest_items(conn, thread.current_bill_id)
            items = lines(sql.catalog(conn, book), current)
            now = datetime.now(UTC)
            head = sql.day_bill(conn, book, date, currency)
            if head is None:
                bill_id, revision = _insert_bill(conn, thread_id, book, date, currency, now)
            else:
                bill_id, revision = head.id, head.revision + 1
                sql.bump(conn, bill_id, revision, False, now)
            sql.insert_revision(
                conn, bill_id, revision, Change(items), reason, note, run_id, call_id, now, actor
            )
            sql.learn(conn, book, prices_of(items), f"bill #{bill_id}", now)
            sql.set_current(conn, thread_id, bill_id, now)
            return bill_id, revision

        return await self._write_bill(work, run_id, call_id)

    async def write_bill_revision(
        self,
        thread_id: str,
        bill_id: int | None,
        revise: RevisedLines,
        *,
        reason: str,
        note: str | None,
        run_id: str | None,
        call_id: str | None,
        actor: Actor | None = None,
    ) -> Bill:
        """Append a revision to a bill of the thread's book (None: the thread's current one)."""

        def work(conn: sa.Connection) -> tuple[int, int]:
            head = sql.bill_for_write(conn, thread_id, bill_id)
            before = sql.latest_items(conn, head.id)
            book = sql.thread_book(conn, thread_id)
            items = revise(head, before, sql.catalog(conn, book))
            revision = head.revision + 1
            now = datetime.now(UTC)
            sql.insert_revision(
                conn, head.id, revision, Change(items), reason, note, run_id, call_id, now, actor
            )
            sql.bump(conn, head.id, revision, False, now)
            sql.learn(conn, book, prices_of(items), f"bill #{head.id}", now)
            sql.set_current(conn, thread_id, head.id, now)
            return head.id, revision

        return await self._write_bill(work, run_id, call_id)

    async def write_bill_undo(
        self, thread_id: str, bill_id: int | None, undo: Undone, actor: Actor | None = None
    ) -> Bill:
        """Append an ``undo`` revision; a voiding one also clears the thread's current bill.

        Raises NotFound when the bill (or, without ``bill_id``, a current bill) does not exist.
        """

        def work(conn: sa.Connection) -> tuple[int, int]:
            head = sql.bill_for_write(conn, thread_id, bill_id)
            change = undo(head, sql.revisions(conn, head.id))
            revision = head.revision + 1
            now = datetime.now(UTC)
            sql.insert_revision(conn, head.id, revision, change, UNDO, None, None, None, now, actor)
            sql.bump(conn, head.id, revision, change.voided, now)
            if change.voided:
                conn.execute(
                    threads.update()
                    .where(threads.c.id == thread_id, threads.c.current_bill_id == head.id)
                    .values(current_bill_id=None, updated_at=now)
                )
            else:
                sql.set_current(conn, thread_id, head.id, now)
            return head.id, revision

        return await self._write_bill(work, None, None)

    async def _write_bill(self, work: _Work, run_id: str | None, call_id: str | None) -> Bill:
        """Run ``work(conn) -> (bill_id, revision)`` in a transaction, idempotently, with retry."""
        keyed = bool(run_id and call_id)

        def write(conn: sa.Connection) -> Bill:
            if keyed:
                found = sql.revision_for_call(conn, run_id, call_id)
                if found is not None:
                    return sql.snapshot(conn, *found)
            bill_id, revision = work(conn)
            return sql.snapshot(conn, bill_id, revision)

        def replayed(conn: sa.Connection) -> Bill | None:
            found = sql.revision_for_call(conn, run_id, call_id)
            return None if found is None else sql.snapshot(conn, *found)

        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return await self.db.write(write)
            except IntegrityError as exc:
                # The whole transaction was rolled back (no savepoint: on PostgreSQL a failed
                # statement aborts it anyway). Either a replay of the same call won the race
                # (return its result), or another writer took this revision number (recompute
                # on top of it).
                if keyed:
                    bill = await self.db.read(replayed)
                    if bill is not None:
                        return bill
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise ToolError(
                        "the bill was changed by someone else at the same time; try again",
                        code="write_conflict",
                        zh="账单正被同时修改，请重试",
                    ) from exc
        raise AssertionError("unreachable")

    # --- price catalog ---------------------------------------------------------------------

    async def learn_bill_prices(self, thread_id: str, prices: Prices, source: str) -> None:
        """Upsert catalog rows of a thread's book (NotFound without the thread)."""

        def work(conn: sa.Connection) -> None:
            sql.learn(conn, sql.thread_book(conn, thread_id), prices, source, datetime.now(UTC))

        await self.db.write(work)

    async def bill_catalog(self, thread_id: str) -> Prices:
        """``{normalised name: (unit_cost, unit_price)}`` known in this thread's book."""
        return await self.db.read(lambda conn: sql.catalog(conn, sql.thread_book(conn, thread_id)))

    # --- reads -----------------------------------------------------------------------------

    async def get_bill(
        self, bill_id: int, *, thread_id: str | None = None, book: str | None = None
    ) -> Bill:
        """A bill at its latest revision; with ``thread_id`` (or ``book``), only that book's."""
        return await self.db.read(lambda conn: _get_bill(conn, bill_id, thread_id, book))

    async def current_bill(self, thread_id: str) -> Bill | None:
        """The thread's current bill, None if it has none or it was voided."""

        def work(conn: sa.Connection) -> Bill | None:
            thread = conn.execute(
                sa.select(threads.c.key, threads.c.book, threads.c.current_bill_id).where(
                    threads.c.id == thread_id
                )
            ).first()
            bill_id = None if thread is None else thread.current_bill_id
            if bill_id is None:
                return None
            row = conn.execute(
                sa.select(bills.c.revision, bills.c.voided).where(
                    bills.c.id == bill_id, bills.c.book == sql.book_of(thread)
                )
            ).first()
            if row is None or row.voided:
                return None
            return sql.snapshot(conn, bill_id, row.revision)

        return await self.db.read(work)

    async def bill_history(self, bill_id: int, *, thread_id: str | None = None) -> list[Revision]:
        """Every revision of a bill (of the thread's book, if given), oldest first."""

        def work(conn: sa.Connection) -> list[Revision]:
            if thread_id is not None:
                _get_bill(conn, bill_id, thread_id, None)  # NotFound in another book
            return sql.revisions(conn, bill_id)

        revisions = await self.db.read(work)
        if not revisions:
            raise bill_not_found(bill_id)
        return revisions

    async def list_bills(
        self,
        *,
        thread_id: str | None = None,
        book: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        include_voided: bool = False,
    ) -> list[Bill]:
        """Bills at their latest revision, ordered by date then id; dates are inclusive.

        ``thread_id`` keeps the bills that thread made; ``book`` the bills of a book.
        """
        q = sql.snapshot_query().join(
            bill_revisions,
            sa.and_(
                bill_revisions.c.bill_id == bills.c.id,
                bill_revisions.c.revision == bills.c.revision,
            ),
        )
        if thread_id is not None:
            q = q.where(bills.c.thread_id == thread_id)
        if book is not None:
            q = q.where(bills.c.book == book)
        if date_from is not None:
            q = q.where(bills.c.date >= date_from)
        if date_to is not None:
            q = q.where(bills.c.date <= date_to)
        if not include_voided:
            q = q.where(bills.c.voided.is_(False))
        rows = await self.db.read(
            lambda conn: conn.execute(q.order_by(bills.c.date, bills.c.id)).all()
        )
        return [sql.bill_from_row(r) for r in rows]


def _insert_bill(
    conn: sa.Connection, thread_id: str, book: str, date: str, currency: str, now: datetime
) -> tuple[int, int]:
    """A new bill row at revision 1 (its revision row is the caller's)."""
    result = conn.execute(
        bills.insert().values(
            thread_id=thread_id,
            book=book,
            date=date,
            currency=currency,
            revision=1,
            voided=False,
            created_at=now,
            updated_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row INSERT always reports its primary key
    return int(key[0]), 1


def _get_bill(conn: sa.Connection, bill_id: int, thread_id: str | None, book: str | None) -> Bill:
    """:meth:`BillsRepo.get_bill` inside a transaction (NotFound when not in the book)."""
    q = sa.select(bills.c.revision).where(bills.c.id == bill_id)
    if thread_id is not None:
        book = sql.thread_book(conn, thread_id)
    if book is not None:
        q = q.where(bills.c.book == book)
    revision = conn.execute(q).scalar()
    if revision is None:
        raise bill_not_found(bill_id)
    return sql.snapshot(conn, bill_id, revision)
