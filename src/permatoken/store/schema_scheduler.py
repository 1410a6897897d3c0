"""Tables of the scheduler and the notifier (migration 0003).

- ``scheduler_leader``: one row per SQLite database file naming the one scheduler allowed to
  run on it (a lease with an expiry, renewed every tick). PostgreSQL replicas do not use it.
- ``notices``: every notice permatoken decided to send, unique per (credential, version, event,
  threshold) so that restarts and replicas never decide it twice.
- ``notice_deliveries``: one row per notice and channel, with its state, attempts and last error.
  Channel URLs are never stored (they may hold passwords): only a hash and a redacted label.
- ``tenant_policies``: the tenant layer of the policy (between global settings and credential).
- ``budget_spend``: Graph calls spent per budget key (app, app+WABA) in 10-minute buckets, shared
  by every replica so that the per-app and per-WABA limits hold for all of them together.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import TS, metadata

scheduler_leader = sa.Table(
    "scheduler_leader",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("acquired_at", TS, nullable=False),
)

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("credential_name", sa.String(200), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("threshold", sa.String(40), nullable=False),
    sa.Column("title", sa.String(250), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.UniqueConstraint("credential_name", "version", "event", "threshold"),
)

notice_deliveries = sa.Table(
    "notice_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("label", sa.String(120), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("claimed_by", sa.String(80)),
    sa.Column("claim_expires_at", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", TS),
    sa.UniqueConstraint("notice_id", "channel"),
    sa.CheckConstraint("state IN ('pending','sent','failed','dropped')", name="state_known"),
)
sa.Index(
    "ix_notice_deliveries_due",
    notice_deliveries.c.state,
    notice_deliveries.c.next_attempt_at,
)

tenant_policies = sa.Table(
    "tenant_policies",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

budget_spend = sa.Table(
    "budget_spend",
    metadata,
    sa.Column("key", sa.String(160), primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
)

__all__ = ["budget_spend", "notice_deliveries", "notices", "scheduler_leader", "tenant_policies"]
