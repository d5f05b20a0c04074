"""Liveness and readiness of a serving process (``/healthz``, ``/readyz``).

Ready means: the database answers and is migrated to the head revision; a SQLite file is
still the file this process opened (a file deleted or replaced under a running process is
an error, not something to keep serving from an unlinked inode); the model is configured,
or explicitly not (``TALLYBOT_MODEL=none`` is not a thing: an unset model is reported as
``model: "not configured"`` and does not fail readiness, because commands still work);
every channel reports itself connected.

SQLite serves one process: :class:`SqliteClaim` takes an exclusive lock next to the file,
so a second ``tallybot serve`` on the same file stops with a clear message.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError
from core.store.db import sqlite_path

if TYPE_CHECKING:
    from core.app import Tallybot

log = logging.getLogger(__name__)

ChannelCheck = Callable[[], bool]


class SqliteClaim:
    """An exclusive, non-blocking lock on ``<db>.serve.lock``, held while serving."""

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".serve.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"another tallybot process is already serving from {self.path.with_suffix('')}. "
                "SQLite is for one process; for several replicas set TALLYBOT_DATABASE_URL to "
                "a PostgreSQL database."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Health:
    """Readiness checks for one process; channels add theirs with :meth:`add_channel`."""

    bot: Tallybot
    channels: dict[str, ChannelCheck] = field(default_factory=dict)
    _inode: tuple[int, int] | None = None
    _reported: bool = False

    def __post_init__(self) -> None:
        path = sqlite_path(self.bot.settings.db_url)
        if path is not None and path.exists():
            st = path.stat()
            self._inode = (st.st_dev, st.st_ino)

    def add_channel(self, name: str, check: ChannelCheck) -> None:
        self.channels[name] = check

    def file_problem(self) -> str | None:
        """Why the SQLite file cannot be trusted any more (deleted, replaced), or None."""
        return self._file_problem()

    def _file_problem(self) -> str | None:
        path = sqlite_path(self.bot.settings.db_url)
        if path is None or self._inode is None:
            return None
        try:
            st = path.stat()
        except FileNotFoundError:
            return f"database file {path} was deleted while the process was running"
        if (st.st_dev, st.st_ino) != self._inode:
            return f"database file {path} was replaced while the process was running"
        return None

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, details)``; details name what is wrong."""
        from core.store import db

        checks: dict[str, Any] = {}
        problem = self._file_problem()
        if problem:
            if not self._reported:  # once in the log, every time in /readyz
                log.error("%s; refusing to serve from it, restart with the file restored", problem)
                self._reported = True
            checks["database"] = problem
        else:
            try:
                revision = await db.current_revision(self.bot.store.engine)
                head = db.head_revision()
                checks["database"] = "ok" if revision == head else f"at {revision}, head {head}"
            except Exception as exc:
                checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
        checks["model"] = "ok" if self.bot.model_ready else "not configured"
        for name, check in self.channels.items():
            try:
                checks[name] = "ok" if check() else "not connected"
            except Exception as exc:
                checks[name] = f"error: {exc}"
        ready = all(v in ("ok", "not configured") for v in checks.values())
        return ready, checks
