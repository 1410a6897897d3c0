"""API keys in the store: create (shown once), list, revoke, look up by hash.

Roles, grants and the key format are the pure rules of :mod:`permatoken.access`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import InputError, NotFoundError
from .._secret import Secret, register_secret
from ..access import ApiKey, Role, hash_key, new_key, new_key_id, validate_grant
from ..timeutil import ensure_utc
from .audit import AuditLog, AuditRecord
from .schema_broker import api_keys

if TYPE_CHECKING:
    from .repository import Store

MAX_GRANTS = 50


class KeyStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.audit = AuditLog(store)

    def create(
        self,
        role: str,
        grants: Sequence[str] = (),
        *,
        expires_in: int | None = None,
        label: str | None = None,
        actor: str = "cli",
        source: str | None = None,
    ) -> tuple[ApiKey, Secret]:
        """Make a key; the value is returned once and only its SHA-256 is stored."""
        try:
            role_ = Role(role)
        except ValueError:
            raise InputError(
                f"unknown role {role!r}; choose admin, operator, reader or app"
            ) from None
        grants = tuple(dict.fromkeys(validate_grant(g) for g in grants))
        if len(grants) > MAX_GRANTS:
            raise InputError(f"at most {MAX_GRANTS} grants per key")
        if role_ is Role.APP and not grants:
            raise InputError("an app key needs at least one --grant (e.g. acme/*)")
        if expires_in is not None and not (60 <= expires_in <= 10 * 365 * 86400):
            raise InputError("expiry must be between one minute and ten years")
        if label is not None and (len(label) > 120 or not label.isprintable()):
            raise InputError("the key label must be up to 120 printable characters")
        value = new_key()
        register_secret(value)
        now = datetime.now(UTC).replace(microsecond=0)
        key = ApiKey(
            id=new_key_id(),
            role=role_,
            grants=grants,
            key_hash=hash_key(value.reveal()),
            prefix=value.reveal()[:7],
            label=label,
            created_at=now,
            created_by=actor[:120],
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
        )
        with self.store.write() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    label=key.label,
                    role=key.role.value,
                    grants=list(key.grants),
                    key_hash=key.key_hash,
                    prefix=key.prefix,
                    created_at=key.created_at,
                    created_by=key.created_by,
                    expires_at=key.expires_at,
                )
            )
            self.audit.append_in(
                conn,
                [
                    AuditRecord(
                        actor,
                        "key.created",
                        "ok",
                        target=None,
                        source=source,
                        detail={"key_id": key.id, "role": key.role.value, "grants": list(grants)},
                    )
                ],
            )
        return key, value

    def list(self) -> list[ApiKey]:
        with self.store.read() as conn:
            return [
                _key(r)
                for r in conn.execute(
                    sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
                ).mappings()
            ]

    def get(self, key_id: str) -> ApiKey:
        with self.store.read() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
            )
        if row is None:
            raise NotFoundError(
                f"no API key with id {key_id[:30]!r}", hint="`permatoken keys list` shows them"
            )
        return _key(row)

    def revoke(self, key_id: str, *, actor: str = "cli", source: str | None = None) -> ApiKey:
        now = datetime.now(UTC)
        with self.store.write() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
            )
            if row is None:
                raise NotFoundError(
                    f"no API key with id {key_id[:30]!r}", hint="`permatoken keys list` shows them"
                )
            if row["revoked_at"] is None:
                conn.execute(
                    api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now)
                )
                self.audit.append_in(
                    conn,
                    [
                        AuditRecord(
                            actor, "key.revoked", "ok", source=source, detail={"key_id": key_id}
                        )
                    ],
                )
        return self.get(key_id)

    def by_ids(self, ids: Sequence[str]) -> dict[str, ApiKey]:
        """The keys with these ids that exist (one query per 500 ids)."""
        found: dict[str, ApiKey] = {}
        with self.store.read() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(api_keys).where(api_keys.c.id.in_(list(ids[i : i + 500])))
                for row in conn.execute(q).mappings():
                    found[row["id"]] = _key(row)
        return found

    def lookup(self, key_hash: str) -> ApiKey | None:
        with self.store.read() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))
                .mappings()
                .first()
            )
        return _key(row) if row else None


def _key(r: Any) -> ApiKey:
    return ApiKey(
        id=r["id"],
        role=Role(r["role"]),
        grants=tuple(r["grants"] or ()),
        key_hash=r["key_hash"],
        prefix=r["prefix"],
        label=r["label"],
        created_at=ensure_utc(r["created_at"]) or datetime.now(UTC),
        created_by=r["created_by"],
        expires_at=ensure_utc(r["expires_at"]),
        revoked_at=ensure_utc(r["revoked_at"]),
    )


__all__ = ["KeyStore"]
