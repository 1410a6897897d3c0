"""Bulk inserts for ``permatoken import``: many new credentials per transaction.

One transaction per batch: a batch is stored whole or not at all. A name taken meanwhile (another
process added it) makes the database refuse the batch; the caller then stores that batch's rows
one by one so the others still go in and the taken one is reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .._secret import Secret
from ..events import EventKind
from ..models import Health, NewCredential, VersionMeta, VersionState, tenant_of
from .records import aad_version, meta_values
from .repository import Store
from .schema import credentials, events, versions


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
    """Create every credential of ``items`` (version 1, current) in one transaction.

    Three multi-row statements (credentials, versions, events) instead of three per row: the
    credential ids come back in parameter order, and each value is sealed with its own id and
    version bound as associated data, exactly as ``Store.add_credential`` seals it.
    """
    if not items:
        return
    now = store.clock.now()
    cred_rows: list[dict[str, Any]] = [
        {
            "name": it.spec.name,
            "tenant": tenant_of(it.spec.name),
            "issuer": it.spec.issuer,
            "purpose": it.spec.purpose,
            "business_id": it.spec.business_id,
            "waba_ids": list(it.spec.waba_ids),
            "phone_number_id": it.spec.phone_number_id,
            "app_id": it.spec.app_id,
            "options": {},
            "policy": {},
            "health": it.health.value,
            "next_due_at": it.next_due_at,
            "next_action": it.next_action,
            "created_at": now,
            "updated_at": now,
        }
        for it in items
    ]
    with store.write() as conn:
        ids = [
            int(r[0])
            for r in conn.execute(
                credentials.insert().returning(credentials.c.id, sort_by_parameter_order=True),
                cred_rows,
            )
        ]
        version_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        for cid, it in zip(ids, items, strict=True):
            sealed = store.keyring.seal(
                json.dumps({"token": it.token.reveal()}).encode(), aad_version(cid, 1)
            )
            version_rows.append(
                {
                    "credential_id": cid,
                    "version": 1,
                    "state": VersionState.CURRENT.value,
                    "ciphertext": sealed.ciphertext,
                    "wrapped_key": sealed.wrapped_key,
                    "kek_id": sealed.kek_id,
                    "fingerprint": it.token.fingerprint,
                    "created_at": now,
                    "state_changed_at": now,
                    **meta_values(it.meta),
                }
            )
            event_rows.append(
                {
                    "credential_id": cid,
                    "credential_name": it.spec.name,
                    "kind": EventKind.CREDENTIAL_CREATED,
                    "at": now,
                    "actor": actor,
                    "detail": {
                        "version": 1,
                        "issuer": it.spec.issuer,
                        "fingerprint": it.token.fingerprint,
                        "via": "import",
                    },
                }
            )
        conn.execute(versions.insert(), version_rows)
        conn.execute(events.insert(), event_rows)


__all__ = ["NewImport", "current_fingerprints", "insert_new"]
