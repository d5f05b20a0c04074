"""SQLAlchemy Core tables. Written once for SQLite and PostgreSQL alike.

Money is stored as decimal text (exact on every backend) and read back as ``Decimal``.
Timestamps are stored timezone-aware and always read back in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Money(TypeDecorator[Decimal]):
    """Decimal stored as text: SQLite has no exact decimal type, and text round-trips."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return str(Decimal(value))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes; SQLite drops the zone, so it is put back as UTC on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


threads = sa.Table(
    "threads",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("title", sa.String(300)),
    sa.Column("lang", sa.String(8)),
    sa.Column("current_bill_id", sa.Integer),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=_now, onupdate=_now),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column(
        "thread_id",
        sa.String(40),
        sa.ForeignKey("threads.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(40)),
    sa.Column("file_ids", sa.JSON, nullable=False, default=list),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "thread_id",
        sa.String(40),
        sa.ForeignKey("threads.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mime", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "thread_id", sa.String(40), sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("upto_seq", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.Column("started_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("failed_at", UTCDateTime),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("last_error", sa.JSON),
    sa.Column("usage", sa.JSON, nullable=False, default=dict),
    sa.Column("required_action", sa.JSON),
    sa.Column("incomplete_details", sa.JSON),  # issue 13 (revision 0005)
    sa.Index("ix_runs_thread_status", "thread_id", "status"),
    sa.Index("ix_runs_thread_created", "thread_id", "created_at", "id"),  # issue 12 (0008)
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "run_id",
        sa.String(40),
        sa.ForeignKey("runs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("failed_at", UTCDateTime),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("expired_at", UTCDateTime),
    sa.Column("details", sa.JSON),  # issue 13 (revision 0005): reasoning
)

tool_calls = sa.Table(
    "tool_calls",
    metadata,
    sa.Column(
        "run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("id", sa.String(120), primary_key=True),
    sa.Column(
        "step_id", sa.String(40), sa.ForeignKey("run_steps.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("output", sa.Text),
    sa.Column("is_error", sa.Boolean, nullable=False, default=False),
    sa.Column("approval", sa.String(16)),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.Column("completed_at", UTCDateTime),
)

# Every status change of a run or step, with its time: the audit trail behind `runs show`.
status_log = sa.Table(
    "status_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.String(40),
        sa.ForeignKey("runs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("step_id", sa.String(40)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, default=_now),
)

bills = sa.Table(
    "bills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "thread_id",
        sa.String(40),
        sa.ForeignKey("threads.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("date", sa.String(10), nullable=False),
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("voided", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=_now),
)

# A bill change is a new row here, never an update: the ledger is append-only.
bill_revisions = sa.Table(
    "bill_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("bill_id", sa.Integer, sa.ForeignKey("bills.id", ondelete="CASCADE"), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("cost", Money, nullable=False),
    sa.Column("revenue", Money, nullable=False),
    sa.Column("profit", Money, nullable=False),
    sa.Column("voided", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("run_id", sa.String(40)),
    sa.Column("tool_call_id", sa.String(120)),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.UniqueConstraint("bill_id", "revision", name="uq_bill_revisions_bill_revision"),
    # Idempotency: one tool call writes at most one revision, even when replayed after a crash.
    sa.UniqueConstraint("run_id", "tool_call_id", name="uq_bill_revisions_call"),
)

price_catalog = sa.Table(
    "price_catalog",
    metadata,
    sa.Column(
        "thread_id",
        sa.String(40),
        sa.ForeignKey("threads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("unit_cost", Money),
    sa.Column("unit_price", Money),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=_now),
)

# --- issue 9, the shop's book -------------------------------------------------------------
# The book key (core.bills.books) of a thread and of a bill; bills are found by book, not by
# the thread that made them. Added here so the tables above read as migration 0001 made them.
threads.append_column(sa.Column("book", sa.String(300)))
bills.append_column(sa.Column("book", sa.String(300)))
sa.Index("ix_bills_book_date", bills.c.book, bills.c.date)
# Who made a revision: channel-qualified id ("slack:U123") and the display name, if any.
bill_revisions.append_column(sa.Column("actor", sa.String(200)))
bill_revisions.append_column(sa.Column("actor_name", sa.String(200)))

# The price catalog of a book (replaces the per-thread price_catalog, which 0003 copied in).
book_prices = sa.Table(
    "book_prices",
    metadata,
    sa.Column("book", sa.String(300), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("unit_cost", Money),
    sa.Column("unit_price", Money),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=_now),
)


# Inbound deliveries already handled (Slack event_id, Telegram update_id): at-most-once.
processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("source", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
)

# Small durable state: Telegram's update offset, adapter cursors.
kv = sa.Table(
    "kv",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=_now, onupdate=_now),
)

# --- issue 14: the Assistants API (core/store/assistants.py) -----------------------------------

# Bearer keys of the HTTP API: only the SHA-256 of a key is kept; ``project`` owns its objects.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.Column("revoked_at", UTCDateTime),
)

# What the API adds to tallybot's own rows: assistants themselves, and for threads, messages,
# runs and files the owning project plus API-only fields (metadata, per-run overrides).
api_objects = sa.Table(
    "api_objects",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(120), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("parent", sa.String(120)),
    sa.Column("data", sa.JSON, nullable=False, default=dict),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
    sa.UniqueConstraint("kind", "id", name="uq_api_objects_kind_id"),
    sa.Index("ix_api_objects_list", "kind", "project", "parent"),
)

# --- issue 10: replicas ------------------------------------------------------------------
# Named leases with an expiry: one run at a time per thread across processes
# (``thread:<id>``), one Telegram poller per bot, in-flight deliveries. A holder renews its
# leases while it lives (``replica`` is the process that holds it); a lapsed lease may be taken.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("replica", sa.String(60), nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
