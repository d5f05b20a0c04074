"""runs: index for a thread's newest runs (the history window, issue 12)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:50:00

A turn reads only its thread's newest runs (``ORDER BY created_at DESC, id DESC LIMIT n``);
with this index that is a short index scan at any conversation length instead of a sort of
every run the thread ever had.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_thread_created", "runs", ["thread_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_thread_created", table_name="runs")
