"""sinks: destinations the current token is pushed to (AWS Secrets Manager, files); KEK ids
widened to 255 characters on PostgreSQL for ``kms:{key ARN}`` (SQLite does not enforce lengths)

Revision ID: 0006_sinks
Revises: 0005_providers
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sinks"
down_revision = "0005_providers"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


_KEK_COLUMNS = (("versions", "kek_id"), ("credential_secrets", "kek_id"), ("apps", "secret_kek_id"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _KEK_COLUMNS:
            op.alter_column(
                table,
                column,
                type_=sa.String(255),
                existing_type=sa.String(32),
                existing_nullable=False,
            )
    op.create_table(
        "sinks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column(
            "credential_id",
            sa.Integer,
            sa.ForeignKey(
                "credentials.id", ondelete="CASCADE", name="fk_sinks_credential_id_credentials"
            ),
            nullable=False,
        ),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("delivered_version", sa.Integer),
        sa.Column("delivered_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("uid", name="uq_sinks_uid"),
        sa.UniqueConstraint("credential_id", "url", name="uq_sinks_credential_id_url"),
    )


def downgrade() -> None:
    op.drop_table("sinks")
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _KEK_COLUMNS:
            op.alter_column(
                table,
                column,
                type_=sa.String(32),
                existing_type=sa.String(255),
                existing_nullable=False,
            )
