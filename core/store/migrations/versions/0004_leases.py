"""leases: one run per thread across replicas, one Telegram poller, in-flight deliveries

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 19:00:00

One table of named leases (issue 10). ``owner`` identifies the holder, ``replica`` the
process that renews it, ``expires_at`` when it lapses if the process dies.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("replica", sa.String(length=60), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_index(op.f("ix_leases_replica"), "leases", ["replica"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_leases_replica"), table_name="leases")
    op.drop_table("leases")
