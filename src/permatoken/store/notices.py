"""The notice outbox (tables ``notices`` and ``notice_deliveries``): notices recorded once,
deliveries claimed with an expiry and recorded as sent, retried or failed.

The order of work and its delivery promise are described in :mod:`permatoken.notify.delivery`,
which sends what is claimed here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._secret import redact
from ..timeutil import Clock
from .schema_scheduler import notice_deliveries, notices

if TYPE_CHECKING:
    from ..notify.delivery import Channel
    from ..notify.notices import Notice
    from .repository import Store

# The delivery module's logger: what operators already filter on.
log = logging.getLogger("permatoken.notify.delivery")


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    notice_id: int
    channel: str
    label: str
    attempts: int
    credential: str
    tenant: str
    title: str
    body: str


class Outbox:
    """Notices and their deliveries in the store."""

    def __init__(self, store: Store, *, owner: str, clock: Clock) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock

    def already(self, key: tuple[str, int, str, str]) -> bool:
        name, version, event, threshold = key
        with self.store.read() as conn:
            return (
                conn.execute(
                    sa.select(notices.c.id).where(
                        notices.c.credential_name == name,
                        notices.c.version == version,
                        notices.c.event == event,
                        notices.c.threshold == threshold,
                    )
                ).first()
                is not None
            )

    def has_event(self, name: str, version: int, events: Iterable[str]) -> bool:
        with self.store.read() as conn:
            return (
                conn.execute(
                    sa.select(notices.c.id)
                    .where(
                        notices.c.credential_name == name,
                        notices.c.version == version,
                        notices.c.event.in_(list(events)),
                    )
                    .limit(1)
                ).first()
                is not None
            )

    def enqueue(self, notice: Notice, channels: Sequence[Channel]) -> bool:
        """Record ``notice`` for delivery unless its key exists; True if this call recorded it."""
        now = self.clock.now()
        values = {
            "credential_name": notice.credential,
            "tenant": notice.tenant,
            "version": notice.version,
            "event": notice.event.value,
            "threshold": notice.threshold,
            "title": redact(notice.title)[:250],
            "body": redact(notice.body),
            "state": "queued" if channels else "unrouted",
            "created_at": now,
            "created_by": self.owner[:80],
        }
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(notices).values(values).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(notices).values(values).on_conflict_do_nothing()
        with self.store.write() as conn:
            nid = conn.execute(stmt.returning(notices.c.id)).scalar()
            if nid is None:
                return False
            for ch in channels:
                conn.execute(
                    notice_deliveries.insert().values(
                        notice_id=nid,
                        channel=ch.id,
                        label=ch.label,
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
        log.info(
            "notice %s for %s v%s recorded (%d channels)",
            notice.event.value,
            notice.credential,
            notice.version,
            len(channels),
        )
        return True

    def claim(self, limit: int, ttl: float) -> list[ClaimedDelivery]:
        now = self.clock.now()
        q = (
            sa.select(notice_deliveries.c.id)
            .where(
                notice_deliveries.c.state == "pending",
                notice_deliveries.c.next_attempt_at <= now,
                sa.or_(
                    notice_deliveries.c.claim_expires_at.is_(None),
                    notice_deliveries.c.claim_expires_at < now,
                ),
            )
            .order_by(notice_deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if self.store.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        with self.store.write() as conn:
            ids = list(conn.execute(q).scalars())
            if not ids:
                return []
            conn.execute(
                notice_deliveries.update()
                .where(notice_deliveries.c.id.in_(ids))
                .values(claimed_by=self.owner[:80], claim_expires_at=now + timedelta(seconds=ttl))
            )
            rows = (
                conn.execute(
                    sa.select(
                        notice_deliveries,
                        notices.c.credential_name,
                        notices.c.tenant,
                        notices.c.title,
                        notices.c.body,
                    )
                    .select_from(notice_deliveries.join(notices))
                    .where(notice_deliveries.c.id.in_(ids))
                )
                .mappings()
                .all()
            )
        return [
            ClaimedDelivery(
                r["id"],
                r["notice_id"],
                r["channel"],
                r["label"],
                r["attempts"],
                r["credential_name"],
                r["tenant"],
                r["title"],
                r["body"],
            )
            for r in rows
        ]

    def record(
        self,
        d: ClaimedDelivery,
        *,
        ok: bool,
        error: str | None,
        retry_at: datetime | None,
        dropped: bool = False,
    ) -> None:
        now = self.clock.now()
        if ok:
            values: dict[str, Any] = {"state": "sent", "sent_at": now, "last_error": None}
        elif dropped:
            values = {"state": "dropped", "last_error": error}
        elif retry_at is None:
            values = {"state": "failed", "last_error": error}
        else:
            values = {"state": "pending", "last_error": error, "next_attempt_at": retry_at}
        values |= {"attempts": d.attempts + 1, "claimed_by": None, "claim_expires_at": None}
        with self.store.write() as conn:
            conn.execute(
                notice_deliveries.update()
                .where(
                    notice_deliveries.c.id == d.id,
                    notice_deliveries.c.claimed_by == self.owner[:80],
                )
                .values(**values)
            )
            states = set(
                conn.execute(
                    sa.select(notice_deliveries.c.state).where(
                        notice_deliveries.c.notice_id == d.notice_id
                    )
                ).scalars()
            )
            if "pending" not in states:
                final = (
                    "sent"
                    if states <= {"sent"}
                    else ("failed" if "failed" in states else "partial")
                )
                conn.execute(
                    notices.update().where(notices.c.id == d.notice_id).values(state=final)
                )

    def all_notices(self, name: str | None = None) -> list[dict[str, Any]]:
        """Notices with their deliveries (for tests, the CLI and the dashboard)."""
        q = sa.select(notices).order_by(notices.c.id)
        if name is not None:
            q = q.where(notices.c.credential_name == name)
        with self.store.read() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
            ids = [r["id"] for r in rows]
            deliveries: dict[int, list[dict[str, Any]]] = {}
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                for d in conn.execute(
                    sa.select(notice_deliveries).where(notice_deliveries.c.notice_id.in_(part))
                ).mappings():
                    deliveries.setdefault(d["notice_id"], []).append(dict(d))
        for r in rows:
            r["deliveries"] = deliveries.get(r["id"], [])
        return rows


# --- the deliverer -------------------------------------------------------------------------


__all__ = ["ClaimedDelivery", "Outbox"]
