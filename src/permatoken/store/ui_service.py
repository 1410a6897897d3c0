"""The dashboard's service page questions: who holds leases, what the scheduler spent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .repository import Store
from .schema import credentials
from .schema_scheduler import budget_spend, scheduler_leader

BUCKET = 600  # seconds, as scheduler/budgets.py
WINDOW_BUCKETS = 7


def leases(store: Store, now: datetime, *, limit: int = 200) -> list[dict[str, Any]]:
    """Credentials claimed right now (lease not expired), soonest expiry first."""
    q = (
        sa.select(credentials.c.name, credentials.c.lease_owner, credentials.c.lease_expires_at)
        .where(credentials.c.lease_owner.is_not(None), credentials.c.lease_expires_at > now)
        .order_by(credentials.c.lease_expires_at)
        .limit(limit)
    )
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def replicas(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Owners seen holding a lease or the scheduler leadership, with what they hold."""
    with store.read() as conn:
        held = conn.execute(
            sa.select(credentials.c.lease_owner, sa.func.count())
            .where(credentials.c.lease_owner.is_not(None), credentials.c.lease_expires_at > now)
            .group_by(credentials.c.lease_owner)
        ).all()
        leaders = conn.execute(sa.select(scheduler_leader)).mappings().all()
    out: dict[str, dict[str, Any]] = {}
    for owner, n in held:
        out.setdefault(owner, {"owner": owner, "leases": 0, "leader": None})["leases"] = int(n)
    for r in leaders:
        row = out.setdefault(r["owner"], {"owner": r["owner"], "leases": 0, "leader": None})
        if r["expires_at"] > now:
            row["leader"] = r["expires_at"]
    return sorted(out.values(), key=lambda r: r["owner"])


def budget_spend_by_key(store: Store, now: datetime) -> dict[str, int]:
    """Graph calls spent per budget key in the scheduler's sliding hour."""
    first = int(now.timestamp()) // BUCKET - WINDOW_BUCKETS + 1
    with store.read() as conn:
        rows = conn.execute(
            sa.select(budget_spend.c.key, sa.func.sum(budget_spend.c.calls))
            .where(budget_spend.c.bucket >= first)
            .group_by(budget_spend.c.key)
            .order_by(budget_spend.c.key)
            .limit(500)
        ).all()
    return {k: int(n or 0) for k, n in rows}


__all__ = ["budget_spend_by_key", "leases", "replicas"]
