"""WAL checkpoints of a SQLite store, on a thread of their own instead of in a commit.

SQLite's default copies the write-ahead log back into the database file inside the COMMIT
that takes the log past 1,000 pages (``wal_autocheckpoint``): that commit also writes and
syncs ~4 MB, and every write queued behind it on the store's one worker waits (issue 12: in
one persisted turn after another, the turns that checkpointed were the p95/p99 -- p95 4.4 ms
against 2.2 ms without them). The store's worker connection has automatic checkpoints off
(:func:`no_autocheckpoint`); after its commits it calls :meth:`Checkpointer.poke`, and at most
every ``interval`` seconds a PASSIVE checkpoint runs on this thread's own connection: it never
waits for the worker (nor the worker for it), and sqlite3 releases the GIL while it copies.

Durability is unchanged: ``synchronous=NORMAL`` in WAL mode syncs at checkpoints, wherever they
run. Other connections to the file (the CLI, Alembic) keep SQLite's automatic checkpoints; a
checkpoint that fails (the disk, a lock) is logged and tried again at the next poke, and the
log only grows meanwhile -- no write waits on it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    """A connect listener: this connection's commits never checkpoint (the Checkpointer does)."""
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """PASSIVE checkpoints of the database file ``path``, one at a time, on their own thread."""

    def __init__(self, path: Path, interval: float = 0.5) -> None:
        self.path, self.interval = path, interval
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tallybot-checkpoint")
        self._conn: sqlite3.Connection | None = None  # the thread's own
        self._last = 0.0  # time.monotonic() of the last checkpoint's start
        self._running: Future[None] | None = None
        self.done = 0  # checkpoints run (tests, diagnostics)

    def poke(self) -> None:
        """After a commit (on the worker): start a checkpoint unless one runs or ran lately."""
        if self._running is not None and not self._running.done():
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        self._running = self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.done += 1
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint of %s failed (tried again later): %s", self.path, exc)

    def idle(self) -> None:
        """Wait for a checkpoint that runs (tests)."""
        if self._running is not None:
            self._running.result()

    def close(self) -> None:
        """Wait for a running checkpoint, then close the thread's connection."""
        self._thread.submit(self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
