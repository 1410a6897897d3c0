"""SQL for Tech Providers: Meta's deliveries and Embedded Signup onboardings (``schema_providers``).

Concurrency: a delivery is inserted with ``ON CONFLICT DO NOTHING`` on its key, so the same
change posted twice (Meta's retries, two replicas behind a load balancer) makes one row, and
only the insert that made it hands it to its handler. Its outcome is written by a conditional
``UPDATE`` out of ``received``, so it is written once; two replicas sweeping the same leftover
row may both confirm it with Meta, which is harmless (notices are deduplicated by their key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .._secret import Secret, register_secret
from ..crypto import Sealed
from ..events import EventKind
from ..models import Health
from .repository import Store
from .schema import credentials, versions
from .schema_providers import meta_deliveries, onboardings


def _insert_ignoring(store: Store, table: sa.Table) -> Any:
    if store.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


class Deliveries:
    """The durable log of what Meta told us, and which credentials it concerns."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        """Insert every row not already there (by ``key``), in one transaction; the new ids."""
        now = self.store.clock.now()
        new: list[int] = []
        with self.store.write() as conn:
            for row in rows:
                stmt = (
                    _insert_ignoring(self.store, meta_deliveries)
                    .values(**row, received_at=now, state="received")
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(meta_deliveries.c.id)
                )
                rid = conn.execute(stmt).scalar()
                if rid is not None:
                    new.append(int(rid))
        return new

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(meta_deliveries)
                .where(meta_deliveries.c.state == "received")
                .order_by(meta_deliveries.c.id)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def finish(self, rid: int, state: str, outcome: dict[str, Any]) -> bool:
        """Move a received row to its final state; False if someone else already did."""
        with self.store.write() as conn:
            done = conn.execute(
                meta_deliveries.update()
                .where(meta_deliveries.c.id == rid, meta_deliveries.c.state == "received")
                .values(state=state, outcome=outcome, handled_at=self.store.clock.now())
            ).rowcount
        return bool(done)

    def newer_handled(
        self,
        rid: int,
        when: datetime,
        events: Iterable[str],
        *,
        waba_id: str | None,
        user_id: str | None,
    ) -> bool:
        """Whether a lifecycle change newer than ``when`` was already handled for the same WABA/user."""
        subject = []
        if waba_id:
            subject.append(meta_deliveries.c.waba_id == waba_id)
        if user_id:
            subject.append(meta_deliveries.c.user_id == user_id)
        if not subject:
            return False
        with self.store.read() as conn:
            found = conn.execute(
                sa.select(meta_deliveries.c.id)
                .where(
                    meta_deliveries.c.id != rid,
                    meta_deliveries.c.state.in_(("handled", "stale")),
                    meta_deliveries.c.event.in_(list(events)),
                    meta_deliveries.c.event_time > when,
                    sa.or_(*subject),
                )
                .limit(1)
            ).first()
        return found is not None

    def all(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(meta_deliveries).order_by(meta_deliveries.c.id).limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def credentials_reached(
        self,
        *,
        app_id: str | None,
        waba_id: str | None,
        business_id: str | None,
        user_id: str | None,
    ) -> list[str]:
        """Names of the credentials a change concerns: by WABA (the credential's own list or its
        current token's granular scopes), by owner business, or by the token's user; limited to
        ``app_id``'s credentials (and those with no app) when given. Ids are digits only."""
        cur = sa.and_(versions.c.credential_id == credentials.c.id, versions.c.state == "current")
        ways: list[Any] = []
        if waba_id:
            pattern = f'%"{waba_id}"%'
            ways.append(sa.cast(credentials.c.waba_ids, sa.Text).like(pattern))
            ways.append(sa.cast(versions.c.waba_ids, sa.Text).like(pattern))
        if business_id:
            ways.append(credentials.c.business_id == business_id)
        if user_id:
            ways.append(versions.c.user_id == user_id)
        if not ways:
            return []
        q = (
            sa.select(credentials.c.name)
            .select_from(credentials.outerjoin(versions, cur))
            .where(sa.or_(*ways))
            .order_by(credentials.c.name)
        )
        if app_id is not None:
            q = q.where(sa.or_(credentials.c.app_id == app_id, credentials.c.app_id.is_(None)))
        with self.store.read() as conn:
            return list(dict.fromkeys(conn.execute(q).scalars()))

    def mark(
        self, names: list[str], health: Health, reason: str, *, detail: dict[str, Any]
    ) -> None:
        """Set the health of every credential in ``names`` in one transaction, with an event each."""
        if not names:
            return
        now = self.store.clock.now()
        with self.store.write() as conn:
            for name in names:
                cred = self.store._credential(conn, name, lock=True)
                conn.execute(
                    credentials.update()
                    .where(credentials.c.id == cred.id)
                    .values(health=health.value, health_reason=reason[:2000], updated_at=now)
                )
                self.store.record(
                    conn,
                    EventKind.HEALTH_CHANGED,
                    credential=cred,
                    actor="meta-webhook",
                    detail=detail | {"health": health.value},
                )


def code_hash(code: Secret) -> str:
    return hashlib.sha256(b"permatoken/v1/es-code:" + code.reveal().encode()).hexdigest()


def aad_onboarding(key: str) -> bytes:
    return f"permatoken/v1/onboarding:{key}".encode()


class Onboardings:
    """Embedded Signup business tokens staged the moment they were obtained (sealed)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> dict[str, Any] | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(onboardings).where(onboardings.c.code_hash == key)).first()
        return dict(row._mapping) if row is not None else None

    def stage(self, key: str, token: Secret, *, tenant: str, name: str | None, app_id: str) -> None:
        """Store the business token before anything else is done with it (one statement)."""
        now = self.store.clock.now()
        sealed = self.store.keyring.seal(token.reveal().encode(), aad_onboarding(key))
        with self.store.write() as conn:
            conn.execute(
                _insert_ignoring(self.store, onboardings)
                .values(
                    code_hash=key,
                    tenant=tenant,
                    name=name,
                    app_id=app_id,
                    ciphertext=sealed.ciphertext,
                    wrapped_key=sealed.wrapped_key,
                    kek_id=sealed.kek_id,
                    state="exchanged",
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["code_hash"])
            )

    def token(self, row: dict[str, Any]) -> Secret:
        raw = self.store.keyring.open(
            Sealed(row["ciphertext"], row["wrapped_key"], row["kek_id"]),
            aad_onboarding(row["code_hash"]),
        )
        secret = Secret(raw.decode())
        register_secret(secret)
        return secret

    def done(self, key: str, result: dict[str, Any]) -> None:
        with self.store.write() as conn:
            conn.execute(
                onboardings.update()
                .where(onboardings.c.code_hash == key)
                .values(state="done", result=result, updated_at=self.store.clock.now())
            )


__all__ = ["Deliveries", "Onboardings", "aad_onboarding", "code_hash"]
