"""Credentials in the store: the row that names a token and how it is renewed (issuer, Meta ids,
options, policy, health, the rotation step), with its current version.

Adding a credential is one transaction: the row, version 1 as ``current``, its secrets, the app
it names when that is new, and the ``credential.created`` event. Every write that changes a
credential's versions or secrets first locks its row with :meth:`Credentials.get_in`
(``lock=True``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import AlreadyExistsError, ConflictError, InputError, NotFoundError
from .._secret import Secret
from ..events import EventKind
from ..models import (
    ISSUERS,
    Credential,
    CredentialStatus,
    Health,
    NewCredential,
    TokenVersion,
    VersionMeta,
    VersionState,
    tenant_of,
    validate_name,
)
from .records import ID_FIELDS, check_id, check_purpose, credential_record, version_record
from .schema import credentials, versions

if TYPE_CHECKING:
    from .repository import Store

#: Columns :meth:`Credentials.update` may change.
UPDATABLE = frozenset(
    {
        "purpose",
        "business_id",
        "waba_ids",
        "phone_number_id",
        "app_id",
        "options",
        "policy",
        "health",
        "health_reason",
        "rotation_step",
        "rotation_detail",
        "next_due_at",
        "next_action",
        "issuer",
    }
)


class Credentials:
    """``store.credentials``: the ``credentials`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self,
        spec: NewCredential,
        token: Secret,
        meta: VersionMeta,
        *,
        secrets: Mapping[str, Secret] | None = None,
        health: Health = Health.OK,
        actor: str = "system",
        new_app_secret: Secret | None = None,
    ) -> CredentialStatus:
        """Create a credential with ``token`` as its version 1 (``current``), in one transaction.

        ``new_app_secret`` registers ``spec.app_id`` in the same transaction (a failed add
        leaves no app behind).
        """
        store = self._store
        name = validate_name(spec.name)
        if spec.issuer not in ISSUERS:
            raise InputError(f"unknown issuer {spec.issuer!r}; choose one of: {', '.join(ISSUERS)}")
        check_id(spec.business_id, "business id")
        check_id(spec.phone_number_id, "phone-number id")
        check_id(spec.app_id, "app id")
        for waba in spec.waba_ids:
            check_id(waba, "WABA id")
        check_purpose(spec.purpose)
        now = store._now()
        try:
            with store.write() as conn:
                if new_app_secret is not None and spec.app_id is not None:
                    store.apps.insert_in(conn, spec.app_id, new_app_secret, now, actor=actor)
                cid = conn.execute(
                    credentials.insert()
                    .values(
                        name=name,
                        tenant=tenant_of(name),
                        issuer=spec.issuer,
                        purpose=spec.purpose,
                        business_id=spec.business_id,
                        waba_ids=list(spec.waba_ids),
                        phone_number_id=spec.phone_number_id,
                        app_id=spec.app_id,
                        options=dict(spec.options),
                        policy=dict(spec.policy),
                        health=health.value,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(credentials.c.id)
                ).scalar_one()
                store.token_versions.insert_in(conn, cid, 1, VersionState.CURRENT, token, meta, now)
                for sname, svalue in (secrets or {}).items():
                    store.secrets.put_in(conn, cid, sname, svalue, now)
                cred = self.get_in(conn, name)
                store.event_log.record(
                    conn,
                    EventKind.CREDENTIAL_CREATED,
                    credential=cred,
                    actor=actor,
                    detail={"version": 1, "issuer": spec.issuer, "fingerprint": token.fingerprint},
                )
        except ConflictError as exc:
            if "name" in (exc.constraint or "").lower():
                raise AlreadyExistsError(
                    f"credential {name!r} already exists",
                    hint="use `permatoken rotate` or `permatoken remove` first",
                    name=name,
                ) from None
            raise
        return self.status(name)

    def get(self, name: str) -> Credential:
        with self._store.read() as conn:
            return self.get_in(conn, name)

    def get_in(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Credential:
        """The credential inside the caller's transaction; ``lock`` holds its row until commit."""
        q = sa.select(credentials).where(credentials.c.name == name)
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            validate_name(name)
            raise NotFoundError(
                f"no credential named {name!r}", hint="`permatoken status` lists them", name=name
            )
        cur = conn.execute(
            sa.select(versions.c.version).where(
                versions.c.credential_id == row["id"], versions.c.state == "current"
            )
        ).scalar()
        return credential_record(row, cur)

    def status(self, name: str) -> CredentialStatus:
        """The credential with its current version."""
        with self._store.read() as conn:
            cred = self.get_in(conn, name)
            cur = self._store.token_versions.find_in(conn, cred.id, state=VersionState.CURRENT)
        return CredentialStatus(cred, cur)

    def list_status(
        self,
        *,
        tenant: str | None = None,
        health: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[CredentialStatus]:
        """Credentials by name with their current versions, in a fixed few statements."""
        q = (
            sa.select(credentials, versions.c.version.label("cur_version"))
            .select_from(
                credentials.outerjoin(
                    versions,
                    sa.and_(
                        versions.c.credential_id == credentials.c.id, versions.c.state == "current"
                    ),
                )
            )
            .order_by(credentials.c.name)
            .offset(offset)
        )
        if tenant is not None:
            q = q.where(credentials.c.tenant == tenant)
        if health is not None:
            q = q.where(credentials.c.health == health)
        if limit is not None:
            q = q.limit(limit)
        vq = sa.select(versions).where(versions.c.state == "current")
        with self._store.read() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["id"] for r in rows]
            current: dict[int, TokenVersion] = {}
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                for v in conn.execute(vq.where(versions.c.credential_id.in_(part))).mappings():
                    current[v["credential_id"]] = version_record(v)
        return [
            CredentialStatus(credential_record(r, r["cur_version"]), current.get(r["id"]))
            for r in rows
        ]

    def update(
        self,
        name: str,
        *,
        actor: str = "system",
        new_app_secret: Secret | None = None,
        **fields: Any,
    ) -> Credential:
        """Change fields of a credential; ``new_app_secret`` registers ``fields["app_id"]`` in
        the same transaction."""
        store = self._store
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise InputError(f"cannot update {', '.join(sorted(unknown))}")
        for key, what in ID_FIELDS.items():
            if key in fields:
                check_id(fields[key], what)
        for waba in fields.get("waba_ids") or ():
            check_id(waba, "WABA id")
        if "purpose" in fields:
            check_purpose(fields["purpose"])
        if "health" in fields and isinstance(fields["health"], Health):
            fields["health"] = fields["health"].value
        if "waba_ids" in fields:
            fields["waba_ids"] = list(fields["waba_ids"])
        with store.write() as conn:
            cred = self.get_in(conn, name, lock=True)
            if new_app_secret is not None and fields.get("app_id"):
                store.apps.insert_in(
                    conn, fields["app_id"], new_app_secret, store._now(), actor=actor
                )
            conn.execute(
                credentials.update()
                .where(credentials.c.id == cred.id)
                .values(updated_at=store._now(), **fields)
            )
            return self.get_in(conn, name)

    def remove(self, name: str, *, actor: str = "system") -> None:
        """Delete a credential (its versions and secrets go with it)."""
        with self._store.write() as conn:
            cred = self.get_in(conn, name, lock=True)
            conn.execute(credentials.delete().where(credentials.c.id == cred.id))
            self._store.event_log.record(
                conn, EventKind.CREDENTIAL_REMOVED, credential=cred, actor=actor
            )


__all__ = ["UPDATABLE", "Credentials"]
