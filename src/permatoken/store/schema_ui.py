"""Tables of the dashboard (migration 0007_ui).

- ``ui_sessions``: one row per signed-in browser. The session id itself is never stored, only
  its SHA-256 (a stolen database gives no session); the row names the API key whose role and
  grants the session has, so a revoked or expired key ends its sessions at the next request.
- ``notice_acks``: who acknowledged which notice, and when (the needs-a-human queue shows it).
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import TS, credentials, metadata, versions

ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(24), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_seen_at", TS, nullable=False),
    sa.Column("address", sa.String(64)),
)

notice_acks = sa.Table(
    "notice_acks",
    metadata,
    sa.Column(
        "notice_id",
        sa.Integer,
        sa.ForeignKey("notices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("at", TS, nullable=False),
)

sa.Index("ix_credentials_health_name", credentials.c.health, credentials.c.name)
sa.Index("ix_credentials_issuer_name", credentials.c.issuer, credentials.c.name)
sa.Index("ix_credentials_tenant_name", credentials.c.tenant, credentials.c.name)
sa.Index("ix_credentials_phone_number_id", credentials.c.phone_number_id)
sa.Index("ix_credentials_business_id", credentials.c.business_id)
sa.Index("ix_credentials_next_action_due", credentials.c.next_action, credentials.c.next_due_at)
sa.Index("ix_versions_state_expires_at", versions.c.state, versions.c.expires_at)

__all__ = ["notice_acks", "ui_sessions"]
