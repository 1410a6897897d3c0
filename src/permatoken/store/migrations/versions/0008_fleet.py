"""fleet: an index on versions.fingerprint

Every renewal asks whether its new value is one some credential already holds (pending, current
or previous), by fingerprint first. Without an index that question reads every version stored,
so a renewal cost grew with the fleet; with it, it reads the few rows that match.

Revision ID: 0008_fleet
Revises: 0007_ui
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008_fleet"
down_revision = "0007_ui"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_versions_fingerprint", "versions", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_versions_fingerprint", table_name="versions")
