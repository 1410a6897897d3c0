"""Broker tables: API keys and the tamper-evident audit log (migration 0002).

Declared on the shared :data:`~permatoken.store.schema.metadata` so that migration checks and
``_refuse_unversioned`` see them.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import TS, metadata

api_keys = sa.Table(
    "api_keys",
    metadata,
    # A short random identifier, not derived from the key: safe to show and to log.
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("label", sa.String(120)),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("grants", sa.JSON, nullable=False),
    # SHA-256 (hex) of the whole key; the key itself is never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    # "pt_" and the first four characters: enough for a human to recognise a key, not to use it.
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("expires_at", TS),
    sa.Column("revoked_at", TS),
    sa.CheckConstraint("role IN ('admin','operator','reader','app')", name="role_known"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # Assigned by the appender (previous + 1) under the chain lock, so a gap means a deletion.
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target", sa.String(200)),
    sa.Column("source", sa.String(80)),
    sa.Column("result", sa.String(40), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ix_audit_log_target", audit_log.c.target)

__all__ = ["api_keys", "audit_log"]
