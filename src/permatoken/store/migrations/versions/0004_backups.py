"""backups: the log of backups taken (and the claim on each scheduled period)

Revision ID: 0004_backups
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_backups"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slot", sa.String(64)),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("path", sa.Text),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("counts", sa.JSON),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("slot", name="uq_backups_slot"),
        sa.CheckConstraint("state IN ('running','ok','failed')", name="ck_backups_state_known"),
    )


def downgrade() -> None:
    op.drop_table("backups")
