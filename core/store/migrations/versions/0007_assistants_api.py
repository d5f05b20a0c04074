"""assistants api: bearer keys and the API's own object rows

Revision ID: 0007
Revises: 0002
Create Date: 2026-12-01 19:00:00

- ``api_keys``: hashed bearer keys, each owning one project.
- ``api_objects``: assistants, and the API-only fields of threads, messages, runs and files
  (owning project, metadata, per-run overrides), keyed by (kind, id).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "api_objects",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("parent", sa.String(120)),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "id", name="uq_api_objects_kind_id"),
    )
    op.create_index("ix_api_objects_list", "api_objects", ["kind", "project", "parent"])


def downgrade() -> None:
    op.drop_index("ix_api_objects_list", table_name="api_objects")
    op.drop_table("api_objects")
    op.drop_table("api_keys")
