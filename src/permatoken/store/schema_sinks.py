"""Sinks (migration 0006_sinks): where the current token of a credential is pushed on promotion.

One row per (credential, destination URL). ``delivered_version`` is the version the destination
holds; a sink is behind while it differs from the credential's current version, so a delivery
lost to a crash or an outage is found again by comparing the two (no outbox row to lose).
``uid`` is random per sink and never reused: with the credential id and version it derives the
idempotency key of a delivery (AWS ``ClientRequestToken``). ``next_attempt_at`` doubles as the
claim: a replica takes a delivery by moving it forward (a lease), so one replica delivers it.
No secret is stored here: URLs name destinations, errors are classified messages.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import TS, metadata

sinks = sa.Table(
    "sinks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(32), nullable=False, unique=True),
    sa.Column(
        "credential_id",
        sa.Integer,
        sa.ForeignKey("credentials.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("delivered_version", sa.Integer),
    sa.Column("delivered_at", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("credential_id", "url"),
)

__all__ = ["sinks"]
