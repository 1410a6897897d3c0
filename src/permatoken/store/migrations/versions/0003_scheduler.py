"""scheduler: leader lease (SQLite), notices and deliveries, tenant policies, budgets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduler_leader",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("credential_name", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("threshold", sa.String(40), nullable=False),
        sa.Column("title", sa.String(250), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.UniqueConstraint(
            "credential_name",
            "version",
            "event",
            "threshold",
            name="uq_notices_credential_name_version_event_threshold",
        ),
    )
    op.create_table(
        "notice_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "notice_id",
            sa.Integer,
            sa.ForeignKey(
                "notices.id", ondelete="CASCADE", name="fk_notice_deliveries_notice_id_notices"
            ),
            nullable=False,
        ),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(80)),
        sa.Column("claim_expires_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", TS),
        sa.UniqueConstraint("notice_id", "channel", name="uq_notice_deliveries_notice_id_channel"),
        sa.CheckConstraint(
            "state IN ('pending','sent','failed','dropped')",
            name="ck_notice_deliveries_state_known",
        ),
    )
    op.create_index("ix_notice_deliveries_due", "notice_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "tenant_policies",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "budget_spend",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_spend")
    op.drop_table("tenant_policies")
    op.drop_index("ix_notice_deliveries_due", table_name="notice_deliveries")
    op.drop_table("notice_deliveries")
    op.drop_table("notices")
    op.drop_table("scheduler_leader")
