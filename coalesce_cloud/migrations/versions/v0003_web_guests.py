"""Web guests: browsers admitted to one meeting without an enrolled device; organisations' switches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orgs") as orgs:
        orgs.add_column(sa.Column("web_guests", sa.Boolean(), server_default=sa.true(), nullable=False))
        orgs.add_column(sa.Column("suspended", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "web_guests",
        sa.Column("user", sa.String(length=96), nullable=False),
        sa.Column("box_id", sa.String(length=24), nullable=False),
        sa.Column("meeting_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["box_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("user"),
    )
    op.create_index("ix_web_guests_box_id", "web_guests", ["box_id"])
    op.create_index("ix_web_guests_expires_at", "web_guests", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_guests_expires_at", table_name="web_guests")
    op.drop_index("ix_web_guests_box_id", table_name="web_guests")
    op.drop_table("web_guests")
    with op.batch_alter_table("orgs") as orgs:
        orgs.drop_column("suspended")
        orgs.drop_column("web_guests")
