"""Claiming due work: which credentials are due, who works on them, who runs a SQLite database.

Each credential carries ``next_due_at`` and ``next_action`` (renew, inspect, remind, retire).
A tick claims up to ``batch`` due credentials in one transaction by setting their lease, in
``next_due_at`` order through its index, so its cost follows the work due rather than the number
of credentials stored:

- PostgreSQL: ``SELECT … WHERE next_due_at <= now AND (lease free or expired) ORDER BY
  next_due_at LIMIT n FOR UPDATE SKIP LOCKED`` then the lease ``UPDATE``: replicas never claim the
  same row, and a dead replica's claims return when their lease expires.
- SQLite: one scheduler per database file, enforced by the ``scheduler_leader`` lease row; a
  second one stands by (and takes over when the first stops or dies).

Exactly one renewal per token version rests on three layers, each sufficient for the failure
it names and each tested alone in ``tests/scheduler/test_double_renewal.py``:

1. **Claiming** (:func:`claim`): the due rows are selected ``FOR UPDATE SKIP LOCKED``
   and leased in the same transaction, so replicas ticking at the same moment take disjoint
   rows without waiting for each other (a plain SELECT lets both lease the same rows; a plain
   ``FOR UPDATE`` makes them queue). On SQLite a single leader ticks instead (:func:`lead`).
2. **Re-check before work** (:meth:`permatoken.scheduler.core.Scheduler._still_ours`): the lease
   is re-taken (free, ours, or expired) and the credential must still be due at the version
   seen at claim time; a claim that outlived its lease (a replica paused past ``lease_ttl``) is
   dropped unworked.
3. **The engine** (:meth:`permatoken.rotation.RenewalEngine.rotate`): under its in-process lock
   and the database lease, ``expected_version`` must still be current, and every step it
   persists is fenced by the lease owner, so a worker that lost the lease cannot promote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .schema import credentials, versions
from .schema_scheduler import scheduler_leader

if TYPE_CHECKING:
    from .repository import Store

__all__ = ["LEADER", "Claim", "claim", "claim_query", "lead", "resign"]

#: The name of the SQLite leader lease row.
LEADER = "scheduler"


@dataclass(frozen=True)
class Claim:
    """A due credential leased to this worker: its next action, when it fell due, and the
    current version seen when it was claimed (the re-check compares against it)."""

    name: str
    action: str | None
    due: datetime
    version: int | None


def claim_query(store: Store, now: datetime, batch: int) -> sa.Select[Any]:
    """The due, unleased credentials, oldest due first, locked without waiting on PostgreSQL."""
    q = (
        sa.select(
            credentials.c.id,
            credentials.c.name,
            credentials.c.next_action,
            credentials.c.next_due_at,
        )
        .where(
            credentials.c.next_due_at <= now,
            sa.or_(credentials.c.lease_owner.is_(None), credentials.c.lease_expires_at < now),
        )
        .order_by(credentials.c.next_due_at)
        .limit(batch)
    )
    if store.dialect == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return q


def claim(store: Store, owner: str, now: datetime, *, batch: int, lease_ttl: float) -> list[Claim]:
    """Lease up to ``batch`` due credentials to ``owner`` in one transaction (layer 1 above)."""
    with store.write() as conn:
        rows = conn.execute(claim_query(store, now, batch)).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        conn.execute(
            credentials.update()
            .where(credentials.c.id.in_(ids))
            .values(
                lease_owner=owner[:80],
                lease_expires_at=now + timedelta(seconds=lease_ttl),
            )
        )
        current = dict(
            conn.execute(
                sa.select(versions.c.credential_id, versions.c.version).where(
                    versions.c.credential_id.in_(ids), versions.c.state == "current"
                )
            )
            .tuples()
            .all()
        )
    return [Claim(r.name, r.next_action, r.next_due_at, current.get(r.id)) for r in rows]


def lead(store: Store, owner: str, now: datetime, ttl: timedelta) -> tuple[bool, str]:
    """Take or keep the SQLite leader lease for ``ttl``: (whether ``owner`` leads, who does)."""
    with store.write() as conn:
        row = conn.execute(
            sa.select(scheduler_leader).where(scheduler_leader.c.name == LEADER)
        ).first()
        if row is None:
            conn.execute(
                scheduler_leader.insert().values(
                    name=LEADER, owner=owner[:80], expires_at=now + ttl, acquired_at=now
                )
            )
            return True, owner
        if row.owner == owner[:80] or row.expires_at < now:
            conn.execute(
                scheduler_leader.update()
                .where(scheduler_leader.c.name == LEADER)
                .values(
                    owner=owner[:80],
                    expires_at=now + ttl,
                    **({} if row.owner == owner[:80] else {"acquired_at": now}),
                )
            )
            return True, owner
        return False, str(row.owner)


def resign(store: Store, owner: str) -> None:
    """Give the SQLite leader lease back (if ``owner`` holds it), so a standby takes over now."""
    with store.write() as conn:
        conn.execute(
            scheduler_leader.delete().where(
                scheduler_leader.c.name == LEADER,
                scheduler_leader.c.owner == owner[:80],
            )
        )
