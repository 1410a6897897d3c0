"""The ``sinks`` table: which destinations each credential's current token goes to, and how far
each has got.

Concurrency: a delivery is claimed by one conditional ``UPDATE`` that moves ``next_attempt_at``
forward by a lease (:meth:`SinkTable.claim`); whoever's update matches delivers, every other
replica skips it until the lease runs out (a replica that died mid-delivery is replaced then).
The destination's idempotency (see :mod:`permatoken.sinks.aws_sm`) covers the rest: a delivery
made twice still lands once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import AlreadyExistsError, ConflictError, NotFoundError
from ..events import EventKind
from ..timeutil import isoformat
from .schema import credentials, versions
from .schema_sinks import sinks

if TYPE_CHECKING:
    from .repository import Store


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """A sink with where its credential is now (no secret in here)."""

    id: int
    uid: str
    name: str
    credential_id: int
    url: str
    delivered_version: int | None
    delivered_at: datetime | None
    last_error: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    #: The credential's current version and when it became current (None: no current version).
    current_version: int | None
    current_since: datetime | None

    @property
    def behind(self) -> bool:
        return self.current_version is not None and self.delivered_version != self.current_version

    def lag_seconds(self, now: datetime) -> float:
        """How long the destination has held an older value than the current one (0: none)."""
        if not self.behind or self.current_since is None:
            return 0.0
        return max(0.0, (now - self.current_since).total_seconds())

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "delivered_version": self.delivered_version,
            "delivered_at": isoformat(self.delivered_at),
            "current_version": self.current_version,
            "behind": self.behind,
            "lag_seconds": round(self.lag_seconds(now)),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": isoformat(self.next_attempt_at) if self.behind else None,
        }


_cur = versions.alias("cur")


def _select() -> sa.Select[Any]:
    cur = _cur
    return (
        sa.select(
            sinks,
            credentials.c.name,
            cur.c.version.label("current_version"),
            cur.c.state_changed_at.label("current_since"),
        )
        .join(credentials, credentials.c.id == sinks.c.credential_id)
        .outerjoin(cur, (cur.c.credential_id == sinks.c.credential_id) & (cur.c.state == "current"))
    )


def _record(r: Any) -> SinkRecord:
    return SinkRecord(
        id=r["id"],
        uid=r["uid"],
        name=r["name"],
        credential_id=r["credential_id"],
        url=r["url"],
        delivered_version=r["delivered_version"],
        delivered_at=r["delivered_at"],
        last_error=r["last_error"],
        attempts=r["attempts"] or 0,
        next_attempt_at=r["next_attempt_at"],
        created_at=r["created_at"],
        current_version=r["current_version"],
        current_since=r["current_since"],
    )


class SinkTable:
    """Reads and writes the ``sinks`` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        name: str,
        url: str,
        options: dict[str, str],
        *,
        uid: str,
        delivered_version: int,
        actor: str,
    ) -> SinkRecord:
        """Record a sink that already holds ``delivered_version`` (``sink add`` delivered it)."""
        now = self.store.clock.now()
        try:
            with self.store.write() as conn:
                cred = self.store._credential(conn, name)
                sid = conn.execute(
                    sinks.insert()
                    .values(
                        uid=uid,
                        credential_id=cred.id,
                        url=url,
                        options=options,
                        delivered_version=delivered_version,
                        delivered_at=now,
                        attempts=0,
                        created_at=now,
                    )
                    .returning(sinks.c.id)
                ).scalar_one()
                self.store.record(
                    conn,
                    EventKind.SINK_ADDED,
                    credential=cred,
                    actor=actor,
                    detail={"url": url, "version": delivered_version},
                )
                row = conn.execute(_select().where(sinks.c.id == sid)).mappings().one()
        except ConflictError as exc:
            raise AlreadyExistsError(
                f"{name!r} already has the sink {url}",
                hint="`permatoken sink list` shows the sinks",
                name=name,
            ) from exc
        return _record(row)

    def get(self, name: str, url: str) -> SinkRecord | None:
        with self.store.read() as conn:
            row = (
                conn.execute(_select().where(credentials.c.name == name, sinks.c.url == url))
                .mappings()
                .first()
            )
        return _record(row) if row else None

    def all(self, name: str | None = None) -> list[SinkRecord]:
        q = _select().order_by(credentials.c.name, sinks.c.url)
        if name is not None:
            q = q.where(credentials.c.name == name)
        with self.store.read() as conn:
            return [_record(r) for r in conn.execute(q).mappings()]

    def remove(self, name: str, url: str | None, *, actor: str) -> list[str]:
        """Remove ``name``'s sink ``url`` (every sink of ``name`` if None); the URLs removed."""
        with self.store.write() as conn:
            cred = self.store._credential(conn, name)
            q = sa.select(sinks.c.id, sinks.c.url).where(sinks.c.credential_id == cred.id)
            if url is not None:
                q = q.where(sinks.c.url == url)
            found = conn.execute(q).all()
            if not found:
                raise NotFoundError(
                    f"{name!r} has no sink {url}" if url else f"{name!r} has no sinks",
                    hint=f"`permatoken sink list {name}` shows its sinks",
                    name=name,
                )
            conn.execute(sinks.delete().where(sinks.c.id.in_([r[0] for r in found])))
            for _, u in found:
                self.store.record(
                    conn, EventKind.SINK_REMOVED, credential=cred, actor=actor, detail={"url": u}
                )
        return [u for _, u in found]

    # --- the worker's side ---------------------------------------------------------------
    def due(self, now: datetime, *, limit: int = 100) -> list[SinkRecord]:
        """Sinks behind their credential's current version whose next attempt is due."""
        q = (
            _select()
            .where(
                _cur.c.version.is_not(None),
                sa.or_(
                    sinks.c.delivered_version.is_(None),
                    sinks.c.delivered_version != _cur.c.version,
                ),
                sa.or_(sinks.c.next_attempt_at.is_(None), sinks.c.next_attempt_at <= now),
            )
            .order_by(sinks.c.next_attempt_at.is_not(None), sinks.c.next_attempt_at, sinks.c.id)
            .limit(limit)
        )
        with self.store.read() as conn:
            return [_record(r) for r in conn.execute(q).mappings()]

    def claim(self, sink: SinkRecord, now: datetime, lease: float) -> bool:
        """Take this delivery for ``lease`` seconds; False if another worker has it."""
        with self.store.write() as conn:
            taken = conn.execute(
                sinks.update()
                .where(
                    sinks.c.id == sink.id,
                    sa.or_(sinks.c.next_attempt_at.is_(None), sinks.c.next_attempt_at <= now),
                )
                .values(next_attempt_at=now + timedelta(seconds=lease))
            )
            return taken.rowcount == 1

    def delivered(self, sink: SinkRecord, version: int, now: datetime) -> None:
        with self.store.write() as conn:
            conn.execute(
                sinks.update()
                .where(sinks.c.id == sink.id)
                .values(
                    delivered_version=version,
                    delivered_at=now,
                    last_error=None,
                    attempts=0,
                    next_attempt_at=None,
                )
            )
            self.store.record(
                conn,
                EventKind.SINK_DELIVERED,
                name=sink.name,
                detail={"url": sink.url, "version": version, "after_failures": sink.attempts},
            )

    def failed(self, sink: SinkRecord, error: str, next_at: datetime, version: int) -> None:
        with self.store.write() as conn:
            conn.execute(
                sinks.update()
                .where(sinks.c.id == sink.id)
                .values(
                    last_error=error[:1000], attempts=sink.attempts + 1, next_attempt_at=next_at
                )
            )
            if sink.attempts == 0:  # the first failure of a run; the recovery is an event too
                self.store.record(
                    conn,
                    EventKind.SINK_FAILED,
                    name=sink.name,
                    detail={"url": sink.url, "version": version, "error": error[:300]},
                )


__all__ = ["SinkRecord", "SinkTable"]
