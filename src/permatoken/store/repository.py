"""The credential store: every read and write of credentials, versions, apps and events.

Writes that belong together are one transaction. On PostgreSQL the credential row is locked
(``FOR UPDATE``) before its versions change; on SQLite every write transaction holds the
database write lock from its first statement (``BEGIN IMMEDIATE``). Partial unique indexes make
the database itself refuse a second ``current`` (or ``pending``) version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .._exceptions import (
    AlreadyExistsError,
    ConflictError,
    CryptoError,
    DecryptionError,
    InputError,
    KmsUnavailableError,
    NotFoundError,
    PermatokenError,
)
from .._secret import Secret, fingerprint, register_secret
from ..crypto import Keyring, Sealed
from ..live_keyring import LiveKeyring
from ..models import (
    ISSUERS,
    App,
    Credential,
    CredentialStatus,
    Event,
    Health,
    NewCredential,
    TokenVersion,
    VersionMeta,
    VersionState,
    tenant_of,
    validate_name,
)
from ..timeutil import Clock, SystemClock, ensure_utc
from . import engine as eng
from .keys import KeysMixin
from .leases import LeaseMixin
from .schema import apps, credential_secrets, credentials, events, versions

log = logging.getLogger(__name__)

_ID_MAX = 64
#: PostgreSQL channel on which every promotion is announced as {"name": …, "version": …}.
NOTIFY_CHANNEL = "permatoken_versions"


def _aad_version(credential_id: int, version: int) -> bytes:
    return f"permatoken/v1/credential:{credential_id}/version:{version}".encode()


def _aad_secret(credential_id: int, name: str) -> bytes:
    return f"permatoken/v1/credential:{credential_id}/secret:{name}".encode()


def _aad_app(app_id: str) -> bytes:
    return f"permatoken/v1/app:{app_id}".encode()


def _check_id(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not (0 < len(value) <= _ID_MAX) or not value.isascii() or not value.isalnum():
        raise InputError(f"{what} must be 1-{_ID_MAX} ASCII letters or digits, got {value[:40]!r}")
    return value


_ID_FIELDS = {
    "business_id": "business id",
    "phone_number_id": "phone-number id",
    "app_id": "app id",
}


def _check_purpose(value: str | None) -> None:
    if value is not None and (len(value) > 40 or not value.replace("-", "").isalnum()):
        raise InputError("purpose must be up to 40 letters, digits or '-' (e.g. messaging)")


class Store(LeaseMixin, KeysMixin):
    """Repository over one database. Construct with :func:`open_store` or :meth:`Store.open`."""

    def __init__(
        self,
        engine: sa.Engine,
        keyring: LiveKeyring | Keyring,
        *,
        url: str,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.keyring = keyring if isinstance(keyring, LiveKeyring) else LiveKeyring.fixed(keyring)
        self.url = url
        self.clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"Store({eng.describe_url(self.url)})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def unavailable(self) -> str | None:
        """Why this store cannot be used as opened (its SQLite file deleted, replaced or
        read-only since), or None. One ``stat``; PostgreSQL answers None."""
        guard = eng.database_file(self.engine)
        found = guard.problem() if guard is not None else None
        return found[1] if found is not None else None

    # --- transactions ---------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        self.keyring.prepare()  # the key check, if due, before the write lock is held
        with eng.translated(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with eng.translated(self.url), self.engine.connect() as raw:
            conn = raw.execution_options(readonly=True)
            with conn.begin():
                yield conn

    def _now(self) -> datetime:
        return self.clock.now()

    # --- events -------------------------------------------------------------------
    def record(
        self,
        conn: sa.Connection,
        kind: str,
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
                at=self._now(),
                actor=actor[:120],
                detail=dict(detail or {}),
            )
        )

    def events(self, name: str | None = None, *, limit: int = 100) -> list[Event]:
        q = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if name is not None:
            q = q.where(events.c.credential_name == name)
        with self.read() as conn:
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

    # --- apps ---------------------------------------------------------------------
    def put_app(
        self,
        app_id: str,
        secret: Secret | None,
        *,
        name: str | None = None,
        require_app_secret: bool | None = None,
        actor: str = "system",
    ) -> App:
        """Register an app or update it; ``secret=None`` keeps the stored secret."""
        _check_id(app_id, "app id")
        now = self._now()
        with self.write() as conn:
            row = (
                conn.execute(sa.select(apps).where(apps.c.id == app_id).with_for_update())
                .mappings()
                .first()
            )
            values: dict[str, Any] = {"updated_at": now}
            if name is not None:
                values["name"] = name[:200]
            if require_app_secret is not None:
                values["require_app_secret"] = require_app_secret
            if row is None:
                if secret is None:
                    raise InputError(f"app {app_id} is not registered yet: its secret is required")
                self._insert_app(conn, app_id, secret, now, actor=actor, **values)
            else:
                if secret is not None:
                    values |= self._sealed_app_secret(app_id, secret)
                conn.execute(apps.update().where(apps.c.id == app_id).values(**values))
                self.record(
                    conn,
                    "app.updated",
                    actor=actor,
                    detail={"app_id": app_id, "secret_changed": secret is not None},
                )
        return self.get_app(app_id)

    def _sealed_app_secret(self, app_id: str, secret: Secret) -> dict[str, Any]:
        sealed = self.keyring.seal(secret.reveal().encode(), _aad_app(app_id))
        return {
            "secret_ciphertext": sealed.ciphertext,
            "secret_wrapped_key": sealed.wrapped_key,
            "secret_kek_id": sealed.kek_id,
        }

    def _insert_app(
        self,
        conn: sa.Connection,
        app_id: str,
        secret: Secret,
        now: datetime,
        *,
        actor: str,
        **values: Any,
    ) -> None:
        """Register a new app inside the caller's transaction."""
        _check_id(app_id, "app id")
        conn.execute(
            apps.insert().values(
                id=app_id,
                created_at=now,
                **({"require_app_secret": False, "updated_at": now} | values),
                **self._sealed_app_secret(app_id, secret),
            )
        )
        self.record(conn, "app.added", actor=actor, detail={"app_id": app_id})

    def get_app(self, app_id: str) -> App:
        with self.read() as conn:
            row = conn.execute(sa.select(apps).where(apps.c.id == app_id)).mappings().first()
        if row is None:
            raise NotFoundError(
                f"no app {app_id!r}", hint="register it with `permatoken app add`", app_id=app_id
            )
        return _app(row)

    def list_apps(self) -> list[App]:
        with self.read() as conn:
            return [_app(r) for r in conn.execute(sa.select(apps).order_by(apps.c.id)).mappings()]

    def app_secret(self, app_id: str) -> Secret:
        with self.read() as conn:
            row = conn.execute(sa.select(apps).where(apps.c.id == app_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no app {app_id!r}", app_id=app_id)
        sealed = Sealed(row["secret_ciphertext"], row["secret_wrapped_key"], row["secret_kek_id"])
        try:
            value = self.keyring.open(sealed, _aad_app(app_id)).decode()
        except KmsUnavailableError:
            raise
        except PermatokenError as exc:
            raise DecryptionError(
                f"cannot decrypt the secret of app {app_id}: {exc}", app_id=app_id
            ) from exc
        register_secret(value)
        return Secret(value)

    # --- credentials --------------------------------------------------------------
    def add_credential(
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
        name = validate_name(spec.name)
        if spec.issuer not in ISSUERS:
            raise InputError(f"unknown issuer {spec.issuer!r}; choose one of: {', '.join(ISSUERS)}")
        _check_id(spec.business_id, "business id")
        _check_id(spec.phone_number_id, "phone-number id")
        _check_id(spec.app_id, "app id")
        for waba in spec.waba_ids:
            _check_id(waba, "WABA id")
        _check_purpose(spec.purpose)
        now = self._now()
        try:
            with self.write() as conn:
                if new_app_secret is not None and spec.app_id is not None:
                    self._insert_app(conn, spec.app_id, new_app_secret, now, actor=actor)
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
                self._insert_version(conn, cid, 1, VersionState.CURRENT, token, meta, now)
                for sname, svalue in (secrets or {}).items():
                    self._put_secret(conn, cid, sname, svalue, now)
                cred = self._credential(conn, name)
                self.record(
                    conn,
                    "credential.added",
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
        with self.read() as conn:
            return self._credential(conn, name)

    def _credential(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Credential:
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
        return _credential(row, cur)

    def status(self, name: str) -> CredentialStatus:
        with self.read() as conn:
            cred = self._credential(conn, name)
            cur = self._version_row(conn, cred.id, state=VersionState.CURRENT)
        return CredentialStatus(cred, cur)

    def list_status(
        self,
        *,
        tenant: str | None = None,
        health: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[CredentialStatus]:
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
        with self.read() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["id"] for r in rows]
            current: dict[int, TokenVersion] = {}
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                for v in conn.execute(vq.where(versions.c.credential_id.in_(part))).mappings():
                    current[v["credential_id"]] = _version(v)
        return [
            CredentialStatus(_credential(r, r["cur_version"]), current.get(r["id"])) for r in rows
        ]

    def update_credential(
        self,
        name: str,
        *,
        actor: str = "system",
        new_app_secret: Secret | None = None,
        **fields: Any,
    ) -> Credential:
        """Change fields of a credential; ``new_app_secret`` registers ``fields["app_id"]`` in
        the same transaction."""
        allowed = {
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
        unknown = set(fields) - allowed
        if unknown:
            raise InputError(f"cannot update {', '.join(sorted(unknown))}")
        for key, what in _ID_FIELDS.items():
            if key in fields:
                _check_id(fields[key], what)
        for waba in fields.get("waba_ids") or ():
            _check_id(waba, "WABA id")
        if "purpose" in fields:
            _check_purpose(fields["purpose"])
        if "health" in fields and isinstance(fields["health"], Health):
            fields["health"] = fields["health"].value
        if "waba_ids" in fields:
            fields["waba_ids"] = list(fields["waba_ids"])
        with self.write() as conn:
            cred = self._credential(conn, name, lock=True)
            if new_app_secret is not None and fields.get("app_id"):
                self._insert_app(conn, fields["app_id"], new_app_secret, self._now(), actor=actor)
            conn.execute(
                credentials.update()
                .where(credentials.c.id == cred.id)
                .values(updated_at=self._now(), **fields)
            )
            return self._credential(conn, name)

    def remove(self, name: str, *, actor: str = "system") -> None:
        with self.write() as conn:
            cred = self._credential(conn, name, lock=True)
            conn.execute(credentials.delete().where(credentials.c.id == cred.id))
            self.record(conn, "credential.removed", credential=cred, actor=actor)

    # --- versions -----------------------------------------------------------------
    def _insert_version(
        self,
        conn: sa.Connection,
        cid: int,
        number: int,
        state: VersionState,
        token: Secret,
        meta: VersionMeta,
        now: datetime,
        companions: Mapping[str, Secret] | None = None,
    ) -> None:
        payload = {"token": token.reveal()} | {k: v.reveal() for k, v in (companions or {}).items()}
        sealed = self.keyring.seal(json.dumps(payload).encode(), _aad_version(cid, number))
        conn.execute(
            versions.insert().values(
                credential_id=cid,
                version=number,
                state=state.value,
                ciphertext=sealed.ciphertext,
                wrapped_key=sealed.wrapped_key,
                kek_id=sealed.kek_id,
                fingerprint=token.fingerprint,
                created_at=now,
                state_changed_at=now,
                **_meta_values(meta),
            )
        )

    def _version_row(
        self,
        conn: sa.Connection,
        cid: int,
        *,
        state: VersionState | None = None,
        number: int | None = None,
    ) -> TokenVersion | None:
        q = sa.select(versions).where(versions.c.credential_id == cid)
        if state is not None:
            q = q.where(versions.c.state == state.value)
        if number is not None:
            q = q.where(versions.c.version == number)
        row = conn.execute(q.order_by(versions.c.version.desc())).mappings().first()
        return _version(row) if row else None

    def versions(self, name: str) -> list[TokenVersion]:
        with self.read() as conn:
            cred = self._credential(conn, name)
            rows = conn.execute(
                sa.select(versions)
                .where(versions.c.credential_id == cred.id)
                .order_by(versions.c.version)
            ).mappings()
            return [_version(r) for r in rows]

    def version(
        self, name: str, number: int | None = None, *, state: VersionState | None = None
    ) -> TokenVersion:
        """A version by number, or the newest in ``state`` (current by default)."""
        if number is None and state is None:
            state = VersionState.CURRENT
        with self.read() as conn:
            cred = self._credential(conn, name)
            v = self._version_row(conn, cred.id, state=state, number=number)
        if v is None:
            what = f"version {number}" if number is not None else f"{state} version"
            raise NotFoundError(f"credential {name!r} has no {what}", name=name, version=number)
        return v

    def reveal(self, name: str, number: int | None = None) -> Secret:
        """Decrypt a version's token (the current one by default)."""
        return self.reveal_payload(name, number)["token"]

    def reveal_payload(self, name: str, number: int | None = None) -> dict[str, Secret]:
        with self.read() as conn:
            cred = self._credential(conn, name)
            q = sa.select(versions).where(versions.c.credential_id == cred.id)
            q = (
                q.where(versions.c.version == number)
                if number is not None
                else q.where(versions.c.state == "current")
            )
            row = conn.execute(q).mappings().first()
        if row is None:
            what = f"version {number}" if number is not None else "current version"
            raise NotFoundError(f"credential {name!r} has no {what}", name=name)
        return self._open_version(name, cred.id, row)

    def _open_version(self, name: str, cid: int, row: Mapping[Any, Any]) -> dict[str, Secret]:
        sealed = Sealed(row["ciphertext"], row["wrapped_key"], row["kek_id"])
        try:
            data = json.loads(self.keyring.open(sealed, _aad_version(cid, row["version"])))
        except DecryptionError as exc:
            raise DecryptionError(
                f"cannot decrypt {name!r} version {row['version']}: {exc.message} "
                "(tampered, copied from another row, or the wrong key)",
                hint="restore the row or the key from a backup",
                name=name,
                version=row["version"],
            ) from exc
        except CryptoError as exc:  # key file or KMS: the same error, naming the credential
            raise type(exc)(
                f"cannot decrypt {name!r} version {row['version']}: {exc.message}",
                hint=exc.hint,
                name=name,
            ) from exc
        for value in data.values():
            register_secret(value)
        return {k: Secret(v) for k, v in data.items()}

    def add_pending(
        self,
        name: str,
        token: Secret,
        meta: VersionMeta,
        *,
        companions: Mapping[str, Secret] | None = None,
        secrets: Mapping[str, Secret] | None = None,
        actor: str = "system",
    ) -> TokenVersion:
        """Persist a freshly obtained value as the ``pending`` version (before any other use).

        ``secrets`` replaces credential-level secrets in the same transaction (a rotated refresh
        token must never be stored apart from the access token it came with).
        """
        now = self._now()
        try:
            with self.write() as conn:
                cred = self._credential(conn, name, lock=True)
                top = (
                    conn.execute(
                        sa.select(sa.func.max(versions.c.version)).where(
                            versions.c.credential_id == cred.id
                        )
                    ).scalar()
                    or 0
                )
                self._insert_version(
                    conn, cred.id, top + 1, VersionState.PENDING, token, meta, now, companions
                )
                for sname, svalue in (secrets or {}).items():
                    self._put_secret(conn, cred.id, sname, svalue, now)
                self.record(
                    conn,
                    "version.pending",
                    credential=cred,
                    actor=actor,
                    detail={"version": top + 1, "fingerprint": token.fingerprint},
                )
                v = self._version_row(conn, cred.id, number=top + 1)
        except ConflictError as exc:
            raise ConflictError(
                f"credential {name!r} already has a pending version or a concurrent writer won",
                name=name,
            ) from exc
        assert v is not None
        return v

    def promote(self, name: str, number: int, *, actor: str = "system") -> TokenVersion:
        """Atomically make ``number`` current and the old current ``previous``. Idempotent."""
        now = self._now()
        with self.write() as conn:
            cred = self._credential(conn, name, lock=True)
            target = self._version_row(conn, cred.id, number=number)
            if target is None:
                raise NotFoundError(f"credential {name!r} has no version {number}", name=name)
            if target.state is VersionState.CURRENT:
                return target
            if target.state is not VersionState.PENDING:
                raise ConflictError(
                    f"{name!r} version {number} is {target.state}, only a pending version can be promoted",
                    name=name,
                )
            old = self._version_row(conn, cred.id, state=VersionState.CURRENT)
            if old is not None:
                conn.execute(
                    versions.update()
                    .where(versions.c.credential_id == cred.id, versions.c.version == old.version)
                    .values(state=VersionState.PREVIOUS.value, state_changed_at=now)
                )
            conn.execute(
                versions.update()
                .where(versions.c.credential_id == cred.id, versions.c.version == number)
                .values(state=VersionState.CURRENT.value, state_changed_at=now)
            )
            self.record(
                conn,
                "version.promoted",
                credential=cred,
                actor=actor,
                detail={"version": number, "previous": old.version if old else None},
            )
            if self.dialect == "postgresql":
                # Delivered at commit to every LISTENing replica (broker waiters, SDK feeds).
                conn.execute(
                    sa.text("SELECT pg_notify(:channel, :payload)"),
                    {
                        "channel": NOTIFY_CHANNEL,
                        "payload": json.dumps({"name": name, "version": number}),
                    },
                )
            v = self._version_row(conn, cred.id, number=number)
        assert v is not None
        return v

    def set_version_state(
        self,
        name: str,
        number: int,
        state: VersionState,
        *,
        actor: str = "system",
        reason: str | None = None,
    ) -> None:
        if state in (VersionState.CURRENT, VersionState.PENDING):
            raise InputError(
                "use add_pending() and promote() to create pending or current versions"
            )
        with self.write() as conn:
            cred = self._credential(conn, name, lock=True)
            res = conn.execute(
                versions.update()
                .where(versions.c.credential_id == cred.id, versions.c.version == number)
                .values(state=state.value, state_changed_at=self._now())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"credential {name!r} has no version {number}", name=name)
            self.record(
                conn,
                f"version.{state.value}",
                credential=cred,
                actor=actor,
                detail={"version": number, "reason": reason},
            )

    def live_versions_with_fingerprint(self, fp: str) -> list[tuple[str, int]]:
        """``(credential name, version)`` of every pending/current/previous version whose
        fingerprint is ``fp``: the few rows worth decrypting to tell whether a value is in use."""
        live = (VersionState.PENDING.value, VersionState.CURRENT.value, VersionState.PREVIOUS.value)
        with self.read() as conn:
            rows = conn.execute(
                sa.select(credentials.c.name, versions.c.version)
                .join(credentials, credentials.c.id == versions.c.credential_id)
                .where(versions.c.fingerprint == fp, versions.c.state.in_(live))
            ).all()
        return [(r.name, r.version) for r in rows]

    def update_version_meta(self, name: str, number: int, meta: VersionMeta) -> None:
        with self.write() as conn:
            cred = self._credential(conn, name, lock=True)
            conn.execute(
                versions.update()
                .where(versions.c.credential_id == cred.id, versions.c.version == number)
                .values(**_meta_values(meta))
            )

    # --- credential-level secrets (refresh tokens, passwords, client secrets) -------------
    def _put_secret(
        self, conn: sa.Connection, cid: int, sname: str, value: Secret, now: datetime
    ) -> None:
        sealed = self.keyring.seal(value.reveal().encode(), _aad_secret(cid, sname))
        conn.execute(
            credential_secrets.delete().where(
                credential_secrets.c.credential_id == cid, credential_secrets.c.name == sname
            )
        )
        conn.execute(
            credential_secrets.insert().values(
                credential_id=cid,
                name=sname,
                ciphertext=sealed.ciphertext,
                wrapped_key=sealed.wrapped_key,
                kek_id=sealed.kek_id,
                updated_at=now,
            )
        )

    def put_secret(self, name: str, sname: str, value: Secret) -> None:
        with self.write() as conn:
            cred = self._credential(conn, name, lock=True)
            self._put_secret(conn, cred.id, sname, value, self._now())

    def get_secret(self, name: str, sname: str) -> Secret:
        with self.read() as conn:
            cred = self._credential(conn, name)
            row = (
                conn.execute(
                    sa.select(credential_secrets).where(
                        credential_secrets.c.credential_id == cred.id,
                        credential_secrets.c.name == sname,
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"credential {name!r} has no stored {sname}", name=name)
        sealed = Sealed(row["ciphertext"], row["wrapped_key"], row["kek_id"])
        try:
            value = self.keyring.open(sealed, _aad_secret(cred.id, sname)).decode()
        except KmsUnavailableError:
            raise
        except PermatokenError as exc:
            raise DecryptionError(
                f"cannot decrypt the {sname} of {name!r}: {exc.message}", name=name
            ) from exc
        register_secret(value)
        return Secret(value)


# --- row mapping ------------------------------------------------------------------------


def _meta_values(meta: VersionMeta) -> dict[str, Any]:
    return {
        "token_type": meta.token_type,
        "issued_at": meta.issued_at,
        "expires_at": meta.expires_at,
        "data_access_expires_at": meta.data_access_expires_at,
        "scopes": list(meta.scopes),
        "waba_ids": list(meta.waba_ids),
        "user_id": meta.user_id,
        "is_valid": meta.is_valid,
        "verdict": meta.verdict,
        "inspected_at": meta.inspected_at,
    }


def _version(r: Mapping[Any, Any]) -> TokenVersion:
    return TokenVersion(
        credential_id=r["credential_id"],
        version=r["version"],
        state=VersionState(r["state"]),
        fingerprint=r["fingerprint"],
        kek_id=r["kek_id"],
        meta=VersionMeta(
            token_type=r["token_type"],
            issued_at=ensure_utc(r["issued_at"]),
            expires_at=ensure_utc(r["expires_at"]),
            data_access_expires_at=ensure_utc(r["data_access_expires_at"]),
            scopes=tuple(r["scopes"] or ()),
            waba_ids=tuple(r["waba_ids"] or ()),
            user_id=r["user_id"],
            is_valid=r["is_valid"],
            verdict=r["verdict"],
            inspected_at=ensure_utc(r["inspected_at"]),
        ),
        created_at=ensure_utc(r["created_at"]),  # type: ignore[arg-type]
        state_changed_at=ensure_utc(r["state_changed_at"]),  # type: ignore[arg-type]
    )


def _credential(r: Mapping[Any, Any], current_version: int | None) -> Credential:
    return Credential(
        id=r["id"],
        name=r["name"],
        tenant=r["tenant"],
        issuer=r["issuer"],
        purpose=r["purpose"],
        business_id=r["business_id"],
        waba_ids=tuple(r["waba_ids"] or ()),
        phone_number_id=r["phone_number_id"],
        app_id=r["app_id"],
        health=Health(r["health"]),
        health_reason=r["health_reason"],
        options=dict(r["options"] or {}),
        policy=dict(r["policy"] or {}),
        current_version=current_version,
        rotation_step=r["rotation_step"],
        next_due_at=ensure_utc(r["next_due_at"]),
        next_action=r["next_action"],
        created_at=ensure_utc(r["created_at"]),
        updated_at=ensure_utc(r["updated_at"]),
    )


def _app(r: Mapping[Any, Any]) -> App:
    return App(
        id=r["id"],
        name=r["name"],
        require_app_secret=bool(r["require_app_secret"]),
        kek_id=r["secret_kek_id"],
        created_at=ensure_utc(r["created_at"]),  # type: ignore[arg-type]
        updated_at=ensure_utc(r["updated_at"]),  # type: ignore[arg-type]
    )


__all__ = ["Store", "fingerprint"]
