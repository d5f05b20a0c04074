"""reasoning on run steps, incomplete_details on runs (issue 13)

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 19:00:00

- ``run_steps.details``: JSON, what the model reasoned before the step (readable text and the
  provider's reasoning items), shown by ``tallybot runs show`` and passed back within a run.
- ``runs.incomplete_details``: JSON, ``{"reason": ...}`` when the model's answer was cut off
  (the run is still ``completed``; the text so far is kept).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_steps") as batch:
        batch.add_column(sa.Column("details", sa.JSON, nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("incomplete_details", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("incomplete_details")
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_column("details")
