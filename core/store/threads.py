"""Threads (one conversation each) and their messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.bills.books import place_book
from core.domain import Message, Thread, new_id, utcnow
from core.errors import AlreadyHandled, NotFound
from core.store.base import Database
from core.store.fast import Prepared
from core.store.tables import messages, processed_events, threads

# Prepared once (issue 12): the statements of every message, run on the driver's cursor
# (core.store.fast).
_BY_KEY = Prepared(sa.select(threads).where(threads.c.key == sa.bindparam("w_key")))
_INSERT_THREAD = Prepared(threads.insert())
_INSERT_MESSAGE = Prepared(messages.insert())


def insert_message(conn: sa.Connection, msg: Message) -> int:
    """Store ``msg``; returns its ``seq`` (the thread's message order)."""
    return int(_INSERT_MESSAGE.insert(conn, message_row(msg)))


def message_row(msg: Message) -> dict[str, Any]:
    """The columns :func:`insert_message` writes (the database numbers ``seq``)."""
    return {
        "id": msg.id,
        "thread_id": msg.thread_id,
        "role": msg.role,
        "text": msg.text,
        "run_id": msg.run_id,
        "file_ids": msg.file_ids,
        "created_at": msg.created_at,
    }


class ThreadsRepo:
    """Threads by id or channel key, and the ordered messages of a thread."""

    db: Database

    @staticmethod
    def _thread(row: Any) -> Thread:
        return Thread(
            id=row.id,
            key=row.key,
            title=row.title,
            lang=row.lang,
            current_bill_id=row.current_bill_id,
            created_at=row.created_at,
            metadata=dict(row.metadata or {}),
            book=row.book,
        )

    @staticmethod
    def _message(row: Any) -> Message:
        return Message(
            id=row.id,
            thread_id=row.thread_id,
            role=row.role,
            text=row.text,
            seq=row.seq,
            run_id=row.run_id,
            file_ids=list(row.file_ids or []),
            created_at=row.created_at,
        )

    # --- threads ---------------------------------------------------------------------------

    async def thread_by_key(self, key: str) -> Thread | None:
        params = {"w_key": key}
        row = await self.db.read(lambda conn: _BY_KEY.first(conn, params))
        return self._thread(row) if row else None

    async def get_thread(self, thread_id: str) -> Thread:
        q = sa.select(threads).where(threads.c.id == thread_id)
        row = await self.db.read(lambda conn: conn.execute(q).first())
        if row is None:
            raise NotFound(f"no thread {thread_id}")
        return self._thread(row)

    async def get_or_create_thread(
        self,
        key: str,
        *,
        lang: str | None = None,
        title: str | None = None,
        book: Callable[[str], str] | str | None = None,
    ) -> Thread:
        """The thread for a channel key, created on first use (race-safe via the unique key).

        ``book`` is the new thread's book key, or a function of its id giving it; by default
        the book of the key's place (:func:`core.bills.books.place_book`).
        """
        found = await self.thread_by_key(key)
        if found:
            return found
        return await self.create_thread(key, lang=lang, title=title, book=book)

    async def create_thread(
        self,
        key: str,
        *,
        lang: str | None = None,
        title: str | None = None,
        book: Callable[[str], str] | str | None = None,
    ) -> Thread:
        """A new thread for ``key`` (the caller found none); the one another process created
        at the same moment if it won the race (the key is unique)."""
        thread_id = new_id("thread")
        if callable(book):
            book = book(thread_id)
        thread = Thread(id=thread_id, key=key, lang=lang, title=title, book=book or place_book(key))
        row: dict[str, Any] = {
            "id": thread.id,
            "key": key,
            "lang": lang,
            "title": title,
            "book": thread.book,
            "metadata": {},
            "created_at": thread.created_at,
            "updated_at": thread.created_at,
        }
        try:
            await self.db.write_alone(lambda conn: _INSERT_THREAD.run(conn, row))
        except IntegrityError:
            found = await self.thread_by_key(key)
            if found is None:
                raise
            return found
        return thread

    async def update_thread(self, thread_id: str, **values: Any) -> None:
        update = (
            threads.update().where(threads.c.id == thread_id).values(**values, updated_at=utcnow())
        )
        await self.db.write(lambda conn: conn.execute(update))

    async def archive_thread_key(self, key: str) -> None:
        """`/new`: the old thread keeps its history under an archived key; the key is free."""
        update = (
            threads.update()
            .where(threads.c.key == key)
            .values(key=f"{key}#archived:{new_id('a')[2:]}", updated_at=utcnow())
        )
        await self.db.write(lambda conn: conn.execute(update))

    async def list_threads(self) -> list[Thread]:
        q = sa.select(threads).order_by(threads.c.created_at)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [self._thread(r) for r in rows]

    # --- messages --------------------------------------------------------------------------

    async def add_message(
        self,
        thread_id: str,
        role: str,
        text: str,
        *,
        run_id: str | None = None,
        file_ids: Iterable[str] = (),
        message_id: str | None = None,
        processed: Iterable[tuple[str, str]] = (),
    ) -> Message:
        """Append a message. ``processed``: inbound deliveries ``(source, key)`` recorded as
        handled in the same transaction (issue 10), so a message is never stored without its
        delivery being marked, nor marked without being stored; IntegrityError when one was
        marked already (AlreadyHandled; nothing is stored)."""
        msg = Message(
            id=message_id or new_id("msg"),
            thread_id=thread_id,
            role=role,
            text=text,
            run_id=run_id,
            file_ids=list(file_ids),
        )
        deliveries = list(processed)

        def work(conn: sa.Connection) -> None:
            msg.seq = insert_message(conn, msg)
            for source, delivery in deliveries:
                try:
                    conn.execute(
                        processed_events.insert().values(
                            source=source, key=delivery, created_at=msg.created_at
                        )
                    )
                except IntegrityError as exc:
                    # Raised out of the transaction: it is rolled back, the message too.
                    raise AlreadyHandled(f"{source} {delivery} was handled already") from exc

        if deliveries:
            await self.db.write(work)
        else:  # one INSERT: on PostgreSQL its own transaction, no BEGIN or COMMIT trip
            await self.db.write_alone(work)
        return msg

    async def list_messages(
        self,
        thread_id: str,
        *,
        upto_seq: int | None = None,
        after_seq: int | None = None,
        role: str | None = None,
    ) -> list[Message]:
        q = sa.select(messages).where(messages.c.thread_id == thread_id)
        if upto_seq is not None:
            q = q.where(messages.c.seq <= upto_seq)
        if after_seq is not None:
            q = q.where(messages.c.seq > after_seq)
        if role is not None:
            q = q.where(messages.c.role == role)
        q = q.order_by(messages.c.seq)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [self._message(r) for r in rows]
