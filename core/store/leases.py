"""Named leases with an expiry, and the queries a replicated service asks of the store.

A lease is held by ``owner`` (a token) on behalf of ``replica`` (one process) until
``expires_at``; the replica renews all its leases while it lives, so a lease lapses only
when its process died or hung. Taking a lease is one conditional write, so two processes
racing for the same name never both win (PostgreSQL re-checks the condition on the row it
waited for; SQLite serialises writers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.domain import utcnow
from core.store.base import Database
from core.store.fast import Prepared
from core.store.tables import kv, leases, messages, processed_events, runs

# Prepared once (issue 12): what every turn of `tallybot serve` runs (the thread's lease, its
# outbox), run on the driver's cursor (core.store.fast).
_TAKE = Prepared(
    leases.update()
    .where(
        leases.c.name == sa.bindparam("w_name"),
        sa.or_(
            leases.c.expires_at < sa.bindparam("w_now", type_=leases.c.expires_at.type),
            leases.c.owner == sa.bindparam("w_owner"),
        ),
    )
    .values(
        owner=sa.bindparam("w_owner"),
        replica=sa.bindparam("w_replica"),
        expires_at=sa.bindparam("w_until", type_=leases.c.expires_at.type),
    )
)
_LEASE_EXISTS = Prepared(sa.select(leases.c.name).where(leases.c.name == sa.bindparam("w_name")))
_INSERT_LEASE = Prepared(leases.insert())
_RELEASE = Prepared(
    leases.delete().where(
        leases.c.name == sa.bindparam("w_name"), leases.c.owner == sa.bindparam("w_owner")
    )
)
_RECENT_RUNS = (
    sa.select(runs.c.id, runs.c.created_at)
    .where(runs.c.thread_id == sa.bindparam("w_thread"))
    .order_by(runs.c.created_at.desc(), runs.c.id.desc())
    .limit(sa.bindparam("w_newest", type_=sa.Integer))
    .subquery()
)
_PENDING_RUNS = Prepared(
    sa.select(_RECENT_RUNS.c.id)
    .join(kv, kv.c.key == sa.bindparam("w_prefix", type_=sa.String) + _RECENT_RUNS.c.id)
    .where(kv.c.value == sa.bindparam("w_value"))
    .order_by(_RECENT_RUNS.c.created_at, _RECENT_RUNS.c.id)
)


class LeasesRepo:
    """Leases (take, renew, release, look up) plus unanswered-thread and run-count queries."""

    db: Database

    async def take_lease(self, name: str, owner: str, replica: str, ttl: float) -> bool:
        """Hold ``name`` for ``ttl`` seconds: True when free, lapsed or already ``owner``'s."""
        now = utcnow()
        until = now + timedelta(seconds=ttl)

        params = {
            "w_name": name,
            "w_owner": owner,
            "w_replica": replica,
            "w_now": now,
            "w_until": until,
        }

        def take(conn: sa.Connection) -> bool | None:
            """True: taken; False: someone else's live lease; None: no row yet."""
            if _TAKE.run(conn, params) == 1:
                return True
            exists = _LEASE_EXISTS.first(conn, params)
            return False if exists is not None else None

        taken = await self.db.write(take)
        if taken is not None:
            return taken
        row = {"name": name, "owner": owner, "replica": replica, "expires_at": until}
        try:
            # Its own transaction: on PostgreSQL a failed INSERT aborts the one it is in.
            await self.db.write(lambda conn: _INSERT_LEASE.run(conn, row))
        except IntegrityError:
            return False  # another process inserted it first
        return True

    async def renew_leases(self, replica: str, ttl: float) -> int:
        """Push back the expiry of every lease ``replica`` holds; how many it holds."""

        def work(conn: sa.Connection) -> int:
            result = conn.execute(
                leases.update()
                .where(leases.c.replica == replica)
                .values(expires_at=utcnow() + timedelta(seconds=ttl))
            )
            return result.rowcount

        return await self.db.write(work)

    async def release_lease(self, name: str, owner: str) -> None:
        """Give ``name`` up, if ``owner`` still holds it."""
        params = {"w_name": name, "w_owner": owner}
        await self.db.write(lambda conn: _RELEASE.run(conn, params))

    async def release_replica(self, replica: str) -> None:
        """Give up every lease of ``replica`` (clean shutdown)."""
        delete = leases.delete().where(leases.c.replica == replica)
        await self.db.write(lambda conn: conn.execute(delete))

    async def lease_holder(self, name: str) -> tuple[str, str] | None:
        """``(owner, replica)`` of a live lease on ``name``; None when free or lapsed."""

        def work(conn: sa.Connection) -> Any:
            return conn.execute(
                sa.select(leases.c.owner, leases.c.replica).where(
                    leases.c.name == name, leases.c.expires_at >= utcnow()
                )
            ).first()

        row = await self.db.read(work)
        return (row.owner, row.replica) if row else None

    async def live_leases(self, prefix: str) -> dict[str, str]:
        """name -> replica of every live lease whose name starts with ``prefix``."""

        def work(conn: sa.Connection) -> dict[str, str]:
            rows = conn.execute(
                sa.select(leases.c.name, leases.c.replica).where(
                    leases.c.name.startswith(prefix, autoescape=True),
                    leases.c.expires_at >= utcnow(),
                )
            ).all()
            return {r.name: r.replica for r in rows}

        return await self.db.read(work)

    async def unanswered_threads(self, stored_before: datetime) -> list[str]:
        """Threads with a user message stored before ``stored_before`` and no run covering it."""
        answered = (
            sa.select(runs.c.thread_id, sa.func.max(runs.c.upto_seq).label("upto"))
            .group_by(runs.c.thread_id)
            .subquery()
        )
        q = (
            sa.select(messages.c.thread_id)
            .select_from(messages.outerjoin(answered, answered.c.thread_id == messages.c.thread_id))
            .where(
                messages.c.role == "user",
                messages.c.created_at < stored_before,
                messages.c.seq > sa.func.coalesce(answered.c.upto, 0),
            )
            .distinct()
        )
        return await self.db.read(lambda conn: list(conn.execute(q).scalars()))

    async def run_counts(self) -> dict[str, int]:
        """Runs by status (for /metrics)."""
        q = sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return {str(status): int(count) for status, count in rows}

    async def was_processed(self, source: str, key: str) -> bool:
        """Whether the delivery ``(source, key)`` was recorded as handled."""
        q = sa.select(processed_events.c.key).where(
            processed_events.c.source == source, processed_events.c.key == key
        )
        row = await self.db.read(lambda conn: conn.execute(q).first())
        return row is not None

    async def kv_pending(self, prefix: str, value: str) -> list[str]:
        """Keys under ``prefix`` whose value is ``value`` (the serve outbox)."""
        q = sa.select(kv.c.key).where(
            kv.c.key.startswith(prefix, autoescape=True), kv.c.value == value
        )
        return await self.db.read(lambda conn: list(conn.execute(q).scalars()))

    async def kv_pending_runs(
        self, thread_id: str, prefix: str, value: str, *, newest: int = 3
    ) -> list[str]:
        """Of the thread's ``newest`` runs, the ids whose key ``prefix + id`` holds ``value``,
        oldest first (the serve outbox of one thread: a bounded read at any length)."""
        params = {"w_thread": thread_id, "w_prefix": prefix, "w_value": value, "w_newest": newest}
        rows = await self.db.read(lambda conn: _PENDING_RUNS.all(conn, params))
        return [row[0] for row in rows]
