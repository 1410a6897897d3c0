"""The dashboard's questions about notices: the needs-a-human queue, a credential's notices with
their delivery attempts, and acknowledgements (table ``notice_acks``, migration 0007_ui)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..models import Health
from .repository import Store
from .schema import credentials
from .schema_scheduler import notice_deliveries, notices
from .schema_ui import notice_acks
from .ui_queries import grants_clause

#: Healths of credentials that cannot fix themselves (the needs-a-human queue).
HUMAN_HEALTHS = (Health.NEEDS_HUMAN.value, Health.EXPIRED.value, Health.INVALID.value)


@dataclass
class QueueItem:
    name: str
    health: str
    health_reason: str | None
    notices: list[dict[str, Any]]


def needs_human(store: Store, grants: Sequence[str], *, limit: int = 100) -> list[QueueItem]:
    """Credentials that cannot fix themselves, each with its notices (newest first, full text)."""
    from ..access import Role, covers

    where, _ = grants_clause(grants)
    q = (
        sa.select(credentials.c.name, credentials.c.health, credentials.c.health_reason)
        .where(credentials.c.health.in_(HUMAN_HEALTHS))
        .order_by(credentials.c.updated_at.desc(), credentials.c.name)
        .limit(limit * 4)
    )
    if where is not None:
        q = q.where(where)
    with store.read() as conn:
        creds = [r for r in conn.execute(q) if covers(Role.READER, tuple(grants), r.name)][:limit]
        names = [r.name for r in creds]
        by_name = _notices(conn, names, newest=5)
    return [QueueItem(r.name, r.health, r.health_reason, by_name.get(r.name, [])) for r in creds]


def _notices(
    conn: sa.Connection, names: list[str], *, newest: int
) -> dict[str, list[dict[str, Any]]]:
    if not names:
        return {}
    q = (
        sa.select(notices, notice_acks.c.actor.label("ack_by"), notice_acks.c.at.label("ack_at"))
        .select_from(notices.outerjoin(notice_acks, notice_acks.c.notice_id == notices.c.id))
        .where(notices.c.credential_name.in_(names))
        .order_by(notices.c.id.desc())
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(q).mappings():
        items = out.setdefault(r["credential_name"], [])
        if len(items) < newest:
            items.append(dict(r))
    return out


def credential_notices(store: Store, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """One credential's notices, newest first, each with its delivery attempts."""
    with store.read() as conn:
        items = _notices(conn, [name], newest=limit).get(name, [])
        ids = [n["id"] for n in items]
        if ids:
            for d in conn.execute(
                sa.select(notice_deliveries).where(notice_deliveries.c.notice_id.in_(ids))
            ).mappings():
                for n in items:
                    if n["id"] == d["notice_id"]:
                        n.setdefault("deliveries", []).append(dict(d))
    return items


def notice_credential(store: Store, notice_id: int) -> str | None:
    with store.read() as conn:
        found = conn.execute(
            sa.select(notices.c.credential_name).where(notices.c.id == notice_id)
        ).scalar()
    return str(found) if found is not None else None


def acknowledge(store: Store, notice_id: int, actor: str, at: datetime) -> bool:
    """Record that ``actor`` acknowledged a notice; False if it already was."""
    with store.write() as conn:
        seen = conn.execute(
            sa.select(notice_acks.c.notice_id).where(notice_acks.c.notice_id == notice_id)
        ).first()
        if seen is not None:
            return False
        conn.execute(notice_acks.insert().values(notice_id=notice_id, actor=actor[:120], at=at))
    return True


__all__ = [
    "HUMAN_HEALTHS",
    "QueueItem",
    "acknowledge",
    "credential_notices",
    "needs_human",
    "notice_credential",
]
