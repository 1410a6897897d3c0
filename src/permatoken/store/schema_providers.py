"""Tech Provider tables (migration 0005_providers).

- ``meta_deliveries``: every verified webhook change and deauthorize callback, recorded before it
  is handled. ``key`` is unique: Meta's retries and duplicates of one change land on the same row,
  so a replay is recorded once and handled once, whichever replica got it first.
- ``onboardings``: an Embedded Signup business token, sealed, stored the moment the code was
  exchanged and keyed by a hash of the code (never the code itself). A crash after the exchange
  leaves the token here; a retry with the same code finishes the work and answers the same.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import TS, metadata

meta_deliveries = sa.Table(
    "meta_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("source", sa.String(12), nullable=False),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("waba_id", sa.String(64), index=True),
    sa.Column("business_id", sa.String(64)),
    sa.Column("user_id", sa.String(64)),
    sa.Column("event_time", TS, nullable=False),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("state", sa.String(10), nullable=False, index=True),
    sa.Column("handled_at", TS),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("outcome", sa.JSON),
    sa.CheckConstraint(
        "state IN ('received','handled','ignored','stale','failed')", name="state_known"
    ),
)

onboardings = sa.Table(
    "onboardings",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("kek_id", sa.String(32), nullable=False, index=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("result", sa.JSON),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.CheckConstraint("state IN ('exchanged','done')", name="state_known"),
)

__all__ = ["meta_deliveries", "onboardings"]
