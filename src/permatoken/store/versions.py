"""Token versions: each value a credential has held, sealed, with its state (pending, current,
previous, retired, revoked).

The state machine's writes lock the credential row first (``FOR UPDATE`` on PostgreSQL; the
write transaction itself on SQLite), and partial unique indexes make the database refuse a
second ``current`` or ``pending`` version. A promotion is one transaction and is announced on
:data:`NOTIFY_CHANNEL` at commit (PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import ConflictError, CryptoError, DecryptionError, InputError, NotFoundError
from .._secret import Secret, register_secret
from ..crypto import Sealed
from ..events import EventKind
from ..models import TokenVersion, VersionMeta, VersionState
from .records import aad_version, meta_values, version_record
from .schema import credentials, versions

if TYPE_CHECKING:
    from .repository import Store

#: PostgreSQL channel on which every promotion is announced as {"name": …, "version": …}.
NOTIFY_CHANNEL = "permatoken_versions"


class TokenVersions:
    """``store.token_versions``: the ``versions`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- inside the caller's transaction ------------------------------------------------
    def insert_in(
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
        """Seal ``token`` (with its companion values) as version ``number`` of ``cid``."""
        payload = {"token": token.reveal()} | {k: v.reveal() for k, v in (companions or {}).items()}
        sealed = self._store.keyring.seal(json.dumps(payload).encode(), aad_version(cid, number))
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
                **meta_values(meta),
            )
        )

    def find_in(
        self,
        conn: sa.Connection,
        cid: int,
        *,
        state: VersionState | None = None,
        number: int | None = None,
    ) -> TokenVersion | None:
        """The newest version of ``cid`` matching ``state`` and ``number``, or None."""
        q = sa.select(versions).where(versions.c.credential_id == cid)
        if state is not None:
            q = q.where(versions.c.state == state.value)
        if number is not None:
            q = q.where(versions.c.version == number)
        row = conn.execute(q.order_by(versions.c.version.desc())).mappings().first()
        return version_record(row) if row else None

    # --- reads --------------------------------------------------------------------------
    def all(self, name: str) -> list[TokenVersion]:
        """Every version of a credential, oldest first."""
        with self._store.read() as conn:
            cred = self._store.credentials.get_in(conn, name)
            rows = conn.execute(
                sa.select(versions)
                .where(versions.c.credential_id == cred.id)
                .order_by(versions.c.version)
            ).mappings()
            return [version_record(r) for r in rows]

    def get(
        self, name: str, number: int | None = None, *, state: VersionState | None = None
    ) -> TokenVersion:
        """A version by number, or the newest in ``state`` (current by default)."""
        if number is None and state is None:
            state = VersionState.CURRENT
        with self._store.read() as conn:
            cred = self._store.credentials.get_in(conn, name)
            v = self.find_in(conn, cred.id, state=state, number=number)
        if v is None:
            what = f"version {number}" if number is not None else f"{state} version"
            raise NotFoundError(f"credential {name!r} has no {what}", name=name, version=number)
        return v

    def reveal(self, name: str, number: int | None = None) -> Secret:
        """Decrypt a version's token (the current one by default)."""
        return self.reveal_payload(name, number)["token"]

    def reveal_payload(self, name: str, number: int | None = None) -> dict[str, Secret]:
        with self._store.read() as conn:
            cred = self._store.credentials.get_in(conn, name)
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
        return self.open_row(name, cred.id, row)

    def open_row(self, name: str, cid: int, row: Mapping[Any, Any]) -> dict[str, Secret]:
        """Decrypt a ``versions`` row of credential ``cid`` (named ``name`` in errors)."""
        sealed = Sealed(row["ciphertext"], row["wrapped_key"], row["kek_id"])
        try:
            data = json.loads(self._store.keyring.open(sealed, aad_version(cid, row["version"])))
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

    def live_with_fingerprint(self, fp: str) -> list[tuple[str, int]]:
        """``(credential name, version)`` of every pending/current/previous version whose
        fingerprint is ``fp``: the few rows worth decrypting to tell whether a value is in use."""
        live = (VersionState.PENDING.value, VersionState.CURRENT.value, VersionState.PREVIOUS.value)
        with self._store.read() as conn:
            rows = conn.execute(
                sa.select(credentials.c.name, versions.c.version)
                .join(credentials, credentials.c.id == versions.c.credential_id)
                .where(versions.c.fingerprint == fp, versions.c.state.in_(live))
            ).all()
        return [(r.name, r.version) for r in rows]

    # --- the state machine --------------------------------------------------------------
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
        store = self._store
        now = store._now()
        try:
            with store.write() as conn:
                cred = store.credentials.get_in(conn, name, lock=True)
                top = (
                    conn.execute(
                        sa.select(sa.func.max(versions.c.version)).where(
                            versions.c.credential_id == cred.id
                        )
                    ).scalar()
                    or 0
                )
                self.insert_in(
                    conn, cred.id, top + 1, VersionState.PENDING, token, meta, now, companions
                )
                for sname, svalue in (secrets or {}).items():
                    store.secrets.put_in(conn, cred.id, sname, svalue, now)
                store.event_log.record(
                    conn,
                    EventKind.VERSION_PENDING,
                    credential=cred,
                    actor=actor,
                    detail={"version": top + 1, "fingerprint": token.fingerprint},
                )
                v = self.find_in(conn, cred.id, number=top + 1)
        except ConflictError as exc:
            raise ConflictError(
                f"credential {name!r} already has a pending version or a concurrent writer won",
                name=name,
            ) from exc
        assert v is not None
        return v

    def promote(self, name: str, number: int, *, actor: str = "system") -> TokenVersion:
        """Atomically make ``number`` current and the old current ``previous``. Idempotent."""
        store = self._store
        now = store._now()
        with store.write() as conn:
            cred = store.credentials.get_in(conn, name, lock=True)
            target = self.find_in(conn, cred.id, number=number)
            if target is None:
                raise NotFoundError(f"credential {name!r} has no version {number}", name=name)
            if target.state is VersionState.CURRENT:
                return target
            if target.state is not VersionState.PENDING:
                raise ConflictError(
                    f"{name!r} version {number} is {target.state}, only a pending version can be promoted",
                    name=name,
                )
            old = self.find_in(conn, cred.id, state=VersionState.CURRENT)
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
            store.event_log.record(
                conn,
                EventKind.VERSION_PROMOTED,
                credential=cred,
                actor=actor,
                detail={"version": number, "previous": old.version if old else None},
            )
            if store.dialect == "postgresql":
                # Delivered at commit to every LISTENing replica (broker waiters, SDK feeds).
                conn.execute(
                    sa.text("SELECT pg_notify(:channel, :payload)"),
                    {
                        "channel": NOTIFY_CHANNEL,
                        "payload": json.dumps({"name": name, "version": number}),
                    },
                )
            v = self.find_in(conn, cred.id, number=number)
        assert v is not None
        return v

    def set_state(
        self,
        name: str,
        number: int,
        state: VersionState,
        *,
        actor: str = "system",
        reason: str | None = None,
    ) -> None:
        """Mark a version previous, retired or revoked (never pending or current)."""
        if state in (VersionState.CURRENT, VersionState.PENDING):
            raise InputError(
                "use add_pending() and promote() to create pending or current versions"
            )
        with self._store.write() as conn:
            cred = self._store.credentials.get_in(conn, name, lock=True)
            res = conn.execute(
                versions.update()
                .where(versions.c.credential_id == cred.id, versions.c.version == number)
                .values(state=state.value, state_changed_at=self._store._now())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"credential {name!r} has no version {number}", name=name)
            self._store.event_log.record(
                conn,
                EventKind(f"version.{state.value}"),
                credential=cred,
                actor=actor,
                detail={"version": number, "reason": reason},
            )

    def update_meta(self, name: str, number: int, meta: VersionMeta) -> None:
        with self._store.write() as conn:
            cred = self._store.credentials.get_in(conn, name, lock=True)
            conn.execute(
                versions.update()
                .where(versions.c.credential_id == cred.id, versions.c.version == number)
                .values(**meta_values(meta))
            )


__all__ = ["NOTIFY_CHANNEL", "TokenVersions"]
