"""The history window of a run, read inside a turn's transaction (:mod:`core.store.turns`).

Bounded however long the thread: at most ``window`` earlier runs and the user messages after
the run just outside them. Issue 12: what it reads and never changes again is kept across
turns (:class:`HistoryCache`) -- a finished run with its steps, a user message (never edited)
-- so a turn builds a Run or a Message only for a row not seen before (at a full window of
~40 runs and ~40 messages: one of each a turn, not all), and reads the steps of only the runs
not kept. The statements are the same two listings as without the cache: on PostgreSQL a
statement is a round trip, which costs more than the rows' processing it would save.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

from core.domain import Message, Run, RunStatus
from core.store.fast import Prepared
from core.store.runs import RunsRepo
from core.store.tables import messages, runs
from core.store.threads import ThreadsRepo

RUNS_CACHED = 4096  # finished runs (with their steps) the history keeps in memory (LRU)
MESSAGES_CACHED = 4096  # user messages the history keeps in memory (LRU)


@dataclass(slots=True)
class History:
    """The history window of a run: the earlier runs that can fit (oldest first, with their
    steps) and the user messages after ``after_seq`` up to the run's own."""

    runs: list[Run]
    messages: list[Message]
    after_seq: int = 0


@dataclass(slots=True)
class HistoryCache:
    """What the window read and will never change: finished runs by id (a run not finished
    is read every time), user messages by (seq, id). Used only inside transactions: on the
    SQLite worker thread, or on the event loop's thread for PostgreSQL."""

    runs: OrderedDict[str, Run] = field(default_factory=OrderedDict)
    messages: OrderedDict[tuple[int, str], Message] = field(default_factory=OrderedDict)
    runs_limit: int = RUNS_CACHED
    messages_limit: int = MESSAGES_CACHED


_WINDOW_RUNS = Prepared(
    sa.select(runs.c.id, runs.c.model, runs.c.status, runs.c.upto_seq, runs.c.created_at)
    .where(
        runs.c.thread_id == sa.bindparam("w_thread"),
        runs.c.upto_seq > 0,
        runs.c.id != sa.bindparam("w_run"),
        runs.c.created_at <= sa.bindparam("w_created", type_=runs.c.created_at.type),
    )
    .order_by(runs.c.created_at.desc(), runs.c.id.desc())
    .limit(sa.bindparam("w_limit", type_=sa.Integer))
)
_WINDOW_MESSAGES = Prepared(
    sa.select(messages)
    .where(
        messages.c.thread_id == sa.bindparam("w_thread"),
        messages.c.role == "user",
        messages.c.seq > sa.bindparam("w_after"),
        messages.c.seq <= sa.bindparam("w_upto"),
    )
    .order_by(messages.c.seq)
)
# Where the keys the cache is looked up by sit in the rows (integers and ids: the same
# unprocessed), so a row the cache holds is never processed (issue 12: its datetimes and
# JSON were most of what a full window cost).
_RUN_ID, _RUN_UPTO = (
    _WINDOW_RUNS.stmt.selected_columns.keys().index(k) for k in ("id", "upto_seq")
)
_MESSAGE_SEQ, _MESSAGE_ID = messages.c.keys().index("seq"), messages.c.keys().index("id")
K = TypeVar("K")
V = TypeVar("V")


def read_history(conn: sa.Connection, run: Run, window: int, cache: HistoryCache) -> History:
    """The newest runs before ``run`` (answering messages) that make ``window`` runs with it,
    their steps, and the user messages after the runs before them up to ``run``'s: bounded,
    however long the thread. What ``cache`` holds is not read again."""
    if run.upto_seq:
        window -= 1  # the run itself takes a place in the window
    listed, make = _WINDOW_RUNS.unprocessed(
        conn,
        {
            "w_thread": run.thread_id,
            "w_run": run.id,
            "w_created": run.created_at,
            "w_limit": window + 1,
        },
    )
    rows = listed[::-1]  # oldest first
    after = 0
    if len(rows) > window:
        # Only the newest runs can fit the budget; older ones are not even loaded. A run
        # answers up to the thread's newest user message, so upto_seq grows with creation
        # order: the run just outside the window answered every message before the window.
        after = rows[0][_RUN_UPTO]
        rows = rows[1:]
    found = _runs(conn, run.thread_id, rows, make, cache)
    return History(found, _messages(conn, run, after, cache), after)


def _runs(
    conn: sa.Connection,
    thread_id: str,
    rows: Sequence[Sequence[Any]],
    make: Callable[[Sequence[Any]], Any],
    cache: HistoryCache,
) -> list[Run]:
    """The runs of ``rows`` (oldest first, unprocessed) with their steps: a finished one
    from ``cache``, the others built and their steps read (kept once finished: it never
    changes again)."""
    known = [_touch(cache.runs, raw[_RUN_ID]) for raw in rows]
    missing = [raw[_RUN_ID] for raw, run in zip(rows, known, strict=True) if run is None]
    if not missing:
        return [run for run in known if run is not None]
    steps = RunsRepo._steps_of(conn, missing)
    found = []
    for raw, run in zip(rows, known, strict=True):
        if run is None:
            r = make(raw)
            run = Run(
                id=r.id,
                thread_id=thread_id,
                model=r.model,
                status=RunStatus(r.status),
                upto_seq=r.upto_seq,
                created_at=r.created_at,
                steps=steps.get(r.id, []),
            )
            if run.status.terminal:
                _keep(cache.runs, run.id, run, cache.runs_limit)
        found.append(run)
    return found


def _messages(conn: sa.Connection, run: Run, after: int, cache: HistoryCache) -> list[Message]:
    """The user messages after ``after`` up to ``run``'s, in order; the ones ``cache`` holds
    are not built again (a message never changes)."""
    rows, make = _WINDOW_MESSAGES.unprocessed(
        conn, {"w_thread": run.thread_id, "w_after": after, "w_upto": run.upto_seq}
    )
    found = []
    for raw in rows:
        key = (raw[_MESSAGE_SEQ], raw[_MESSAGE_ID])
        message = _touch(cache.messages, key)
        if message is None:
            message = ThreadsRepo._message(make(raw))
            _keep(cache.messages, key, message, cache.messages_limit)
        found.append(message)
    return found


def _touch(cache: OrderedDict[K, V], key: K) -> V | None:
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
    return value


def _keep(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)
