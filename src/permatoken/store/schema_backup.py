"""The backup log (migration 0004_backups): one row per backup taken of this store.

``slot`` claims a scheduled period: it is unique, so among replicas sharing a database the one
whose insert lands first takes that period's backup and the others skip it. Manual backups have
no slot. Paths are the operator's own file names, never secrets; no key material is stored here.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import TS, metadata

backups = sa.Table(
    "backups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("slot", sa.String(64), unique=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("path", sa.Text),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("counts", sa.JSON),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("state IN ('running','ok','failed')", name="state_known"),
)

__all__ = ["backups"]
