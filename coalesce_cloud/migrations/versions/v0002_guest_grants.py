"""Guest grants: which organisations' senders may resolve another organisation's meeting IDs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guest_grants",
        sa.Column("host_org_id", sa.Integer(), nullable=False),
        sa.Column("guest_org_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["guest_org_id"], ["orgs.id"]),
        sa.ForeignKeyConstraint(["host_org_id"], ["orgs.id"]),
        sa.PrimaryKeyConstraint("host_org_id", "guest_org_id"),
    )


def downgrade() -> None:
    op.drop_table("guest_grants")
