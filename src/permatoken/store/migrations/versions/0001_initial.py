"""initial schema: apps, credentials, versions, credential secrets, events

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("secret_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("secret_wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("secret_kek_id", sa.String(32), nullable=False),
        sa.Column("require_app_secret", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_apps_secret_kek_id", "apps", ["secret_kek_id"])
    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(40)),
        sa.Column("business_id", sa.String(64)),
        sa.Column("waba_ids", sa.JSON, nullable=False),
        sa.Column("phone_number_id", sa.String(64)),
        sa.Column("app_id", sa.String(64)),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("health", sa.String(20), nullable=False),
        sa.Column("health_reason", sa.Text),
        sa.Column("rotation_step", sa.String(20)),
        sa.Column("rotation_detail", sa.JSON),
        sa.Column("next_due_at", TS),
        sa.Column("next_action", sa.String(20)),
        sa.Column("lease_owner", sa.String(80)),
        sa.Column("lease_expires_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("name", name="uq_credentials_name"),
    )
    op.create_index("ix_credentials_tenant", "credentials", ["tenant"])
    op.create_index("ix_credentials_next_due_at", "credentials", ["next_due_at"])
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "credential_id",
            sa.Integer,
            sa.ForeignKey(
                "credentials.id", ondelete="CASCADE", name="fk_versions_credential_id_credentials"
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(24), nullable=False),
        sa.Column("token_type", sa.String(32)),
        sa.Column("issued_at", TS),
        sa.Column("expires_at", TS),
        sa.Column("data_access_expires_at", TS),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("waba_ids", sa.JSON, nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("is_valid", sa.Boolean),
        sa.Column("verdict", sa.Text),
        sa.Column("inspected_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("state_changed_at", TS, nullable=False),
        sa.UniqueConstraint("credential_id", "version", name="uq_versions_credential_id_version"),
        sa.CheckConstraint(
            "state IN ('pending','current','previous','retired','revoked')",
            name="ck_versions_state_known",
        ),
    )
    op.create_index("ix_versions_kek_id", "versions", ["kek_id"])
    op.create_index(
        "uq_versions_one_current",
        "versions",
        ["credential_id"],
        unique=True,
        sqlite_where=sa.text("state = 'current'"),
        postgresql_where=sa.text("state = 'current'"),
    )
    op.create_index(
        "uq_versions_one_pending",
        "versions",
        ["credential_id"],
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "credential_secrets",
        sa.Column(
            "credential_id",
            sa.Integer,
            sa.ForeignKey(
                "credentials.id",
                ondelete="CASCADE",
                name="fk_credential_secrets_credential_id_credentials",
            ),
            primary_key=True,
        ),
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_credential_secrets_kek_id", "credential_secrets", ["kek_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("credential_id", sa.Integer),
        sa.Column("credential_name", sa.String(200)),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_credential_id", "events", ["credential_id"])
    op.create_index("ix_events_credential_name", "events", ["credential_name"])


def downgrade() -> None:
    for table in ("events", "credential_secrets", "versions", "credentials", "apps"):
        op.drop_table(table)
