"""The whole fleet at a glance, for the metrics endpoint: counts by health, and each credential's
current expiry (optionally only names under some prefixes, as a grant-limited key sees them).

Both run inside the caller's read transaction, so counts and rows agree.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import credentials, versions

#: (name, tenant, health, expiry as a Unix time or None)
FleetRow = tuple[str, str, str, float | None]


def health_counts(conn: sa.Connection) -> dict[str, int]:
    q = sa.select(credentials.c.health, sa.func.count()).group_by(credentials.c.health)
    return {health: int(n) for health, n in conn.execute(q).all()}


def expiry_rows(conn: sa.Connection, prefixes: tuple[str, ...] | None) -> list[FleetRow]:
    q = sa.select(
        credentials.c.name, credentials.c.tenant, credentials.c.health, versions.c.expires_at
    ).select_from(
        credentials.outerjoin(
            versions,
            sa.and_(versions.c.credential_id == credentials.c.id, versions.c.state == "current"),
        )
    )
    if prefixes is not None and "" not in prefixes:
        q = q.where(sa.or_(*(credentials.c.name.startswith(p, autoescape=True) for p in prefixes)))
    return [
        (name, tenant, health, exp.timestamp() if exp is not None else None)
        for name, tenant, health, exp in conn.execute(q)
    ]


__all__ = ["FleetRow", "expiry_rows", "health_counts"]
