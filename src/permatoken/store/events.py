"""The event log: what happened to credentials, apps and keys, appended inside the transaction
that made it happen (so an event exists exactly when its change committed), read newest first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..events import EventKind
from ..models import Credential, Event
from ..timeutil import ensure_utc
from .schema import events

if TYPE_CHECKING:
    from .repository import Store


class EventLog:
    """``store.event_log``: the ``events`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        conn: sa.Connection,
        kind: EventKind,
        *,
        credential: Credential | None = None,
        name: str | None = None,
        actor: str = "system",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an event inside the caller's transaction. Details must be non-secret."""
        conn.execute(
            events.insert().values(
                credential_id=credential.id if credential else None,
                credential_name=credential.name if credential else name,
                kind=kind,
                at=self._store._now(),
                actor=actor[:120],
                detail=dict(detail or {}),
            )
        )

    def recent(self, name: str | None = None, *, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events, of one credential if ``name`` is given."""
        q = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if name is not None:
            q = q.where(events.c.credential_name == name)
        with self._store.read() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            Event(
                r["id"],
                r["credential_name"],
                r["kind"],
                ensure_utc(r["at"]) or r["at"],
                r["actor"],
                r["detail"],
            )
            for r in rows
        ]


__all__ = ["EventLog"]
