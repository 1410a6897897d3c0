"""Reading the ``events`` table as a feed (for replicas that follow each other's changes), and the
libpq form of a database URL (for ``LISTEN`` on a connection of its own)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from .schema import events

#: (id, credential name, kind, detail)
FeedRow = tuple[int, str | None, str, object]


def newest_event_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0)


def events_between(
    conn: sa.Connection, after: int, upto: int, kinds: Sequence[str]
) -> list[FeedRow]:
    """Events with ``after < id <= upto`` of the given kinds, oldest first."""
    rows = conn.execute(
        sa.select(events.c.id, events.c.credential_name, events.c.kind, events.c.detail)
        .where(events.c.id > after, events.c.id <= upto, events.c.kind.in_(kinds))
        .order_by(events.c.id)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def libpq_conninfo(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it (driver name dropped; the password kept)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


__all__ = ["FeedRow", "events_between", "libpq_conninfo", "newest_event_id"]
