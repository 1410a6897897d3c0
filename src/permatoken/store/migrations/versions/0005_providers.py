"""providers: Meta webhook deliveries and Embedded Signup onboardings

Revision ID: 0005_providers
Revises: 0004_backups
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_providers"
down_revision = "0004_backups"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meta_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("waba_id", sa.String(64)),
        sa.Column("business_id", sa.String(64)),
        sa.Column("user_id", sa.String(64)),
        sa.Column("event_time", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("handled_at", TS),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("outcome", sa.JSON),
        sa.UniqueConstraint("key", name="uq_meta_deliveries_key"),
        sa.CheckConstraint(
            "state IN ('received','handled','ignored','stale','failed')",
            name="ck_meta_deliveries_state_known",
        ),
    )
    op.create_index("ix_meta_deliveries_waba_id", "meta_deliveries", ["waba_id"])
    op.create_index("ix_meta_deliveries_state", "meta_deliveries", ["state"])
    op.create_table(
        "onboardings",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("result", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("state IN ('exchanged','done')", name="ck_onboardings_state_known"),
    )
    op.create_index("ix_onboardings_kek_id", "onboardings", ["kek_id"])


def downgrade() -> None:
    op.drop_table("onboardings")
    op.drop_table("meta_deliveries")
