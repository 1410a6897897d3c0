"""ui: dashboard sessions, notice acknowledgements, indexes for the fleet overview

Revision ID: 0007_ui
Revises: 0006_sinks
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ui"
down_revision = "0006_sinks"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_ui_sessions_key_id", "ui_sessions", ["key_id"])
    op.create_table(
        "notice_acks",
        sa.Column(
            "notice_id",
            sa.Integer,
            sa.ForeignKey(
                "notices.id", ondelete="CASCADE", name="fk_notice_acks_notice_id_notices"
            ),
            primary_key=True,
        ),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    # The overview counts by health and draws expiries by day: both from an index alone.
    op.create_index("ix_credentials_health_name", "credentials", ["health", "name"])
    op.create_index("ix_credentials_issuer_name", "credentials", ["issuer", "name"])
    op.create_index("ix_credentials_tenant_name", "credentials", ["tenant", "name"])
    op.create_index("ix_credentials_phone_number_id", "credentials", ["phone_number_id"])
    op.create_index("ix_credentials_business_id", "credentials", ["business_id"])
    op.create_index("ix_credentials_next_action_due", "credentials", ["next_action", "next_due_at"])
    op.create_index("ix_versions_state_expires_at", "versions", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_versions_state_expires_at", table_name="versions")
    for name in (
        "next_action_due",
        "business_id",
        "phone_number_id",
        "tenant_name",
        "issuer_name",
        "health_name",
    ):
        op.drop_index(f"ix_credentials_{name}", table_name="credentials")
    op.drop_table("notice_acks")
    op.drop_index("ix_ui_sessions_key_id", table_name="ui_sessions")
    op.drop_table("ui_sessions")
