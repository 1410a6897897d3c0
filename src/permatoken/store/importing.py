"""Bulk inserts for ``permatoken import``: many new credentials per transaction.

One transaction per batch: a batch is stored whole or not at all. A name taken meanwhile (another
process added it) makes the database refuse the batch; the caller then stores that batch's rows
one by one so the others still go in and the taken one is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from .._secret import Secret
from ..models import Health, NewCredential, VersionMeta, VersionState, tenant_of
from .repository import Store
from .schema import credentials, versions


@dataclass(frozen=True)
class NewImport:
    spec: NewCredential
    token: Secret
    meta: VersionMeta
    health: Health
    next_due_at: datetime | None
    next_action: str | None


def current_fingerprints(store: Store, names: Iterable[str]) -> dict[str, str | None]:
    """name → fingerprint of its current version (None without one), for the names that exist."""
    wanted = list(dict.fromkeys(names))
    found: dict[str, str | None] = {}
    q = sa.select(credentials.c.name, versions.c.fingerprint).select_from(
        credentials.outerjoin(
            versions,
            sa.and_(versions.c.credential_id == credentials.c.id, versions.c.state == "current"),
        )
    )
    with store.read() as conn:
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            for name, fp in conn.execute(q.where(credentials.c.name.in_(part))):
                found[name] = fp
    return found


def insert_new(store: Store, items: Sequence[NewImport], *, actor: str = "import") -> None:
    """Create every credential of ``items`` (version 1, current) in one transaction."""
    if not items:
        return
    now = store.clock.now()
    with store.write() as conn:
        for it in items:
            spec = it.spec
            cid = conn.execute(
                credentials.insert()
                .values(
                    name=spec.name,
                    tenant=tenant_of(spec.name),
                    issuer=spec.issuer,
                    purpose=spec.purpose,
                    business_id=spec.business_id,
                    waba_ids=list(spec.waba_ids),
                    phone_number_id=spec.phone_number_id,
                    app_id=spec.app_id,
                    options={},
                    policy={},
                    health=it.health.value,
                    next_due_at=it.next_due_at,
                    next_action=it.next_action,
                    created_at=now,
                    updated_at=now,
                )
                .returning(credentials.c.id)
            ).scalar_one()
            store._insert_version(conn, cid, 1, VersionState.CURRENT, it.token, it.meta, now)
            conn.execute(
                store_events_insert(cid, spec.name, now, actor, spec.issuer, it.token.fingerprint)
            )


def store_events_insert(
    cid: int, name: str, now: datetime, actor: str, issuer: str, fp: str
) -> sa.Insert:
    from .schema import events

    return events.insert().values(
        credential_id=cid,
        credential_name=name,
        kind="credential.added",
        at=now,
        actor=actor,
        detail={"version": 1, "issuer": issuer, "fingerprint": fp, "via": "import"},
    )


__all__ = ["NewImport", "current_fingerprints", "insert_new"]
