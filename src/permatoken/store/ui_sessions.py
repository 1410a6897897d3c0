"""Dashboard sessions in the store (table ``ui_sessions``), shared by every replica.

The browser holds a random 256-bit session id; the table holds its SHA-256 only. A session is
valid while its last request is younger than the idle timeout, its start younger than the
absolute timeout, and its API key usable (checked by the caller on every request).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from .repository import Store
from .schema_ui import ui_sessions


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class UiSession:
    id_hash: str
    key_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


def create_session(
    store: Store, key_id: str, now: datetime, address: str | None
) -> tuple[str, UiSession]:
    """A new session for ``key_id``: (the id for the cookie, the stored row)."""
    session_id = secrets.token_urlsafe(32)
    row = UiSession(session_hash(session_id), key_id, secrets.token_urlsafe(32), now, now)
    with store.write() as conn:
        conn.execute(
            ui_sessions.insert().values(
                id_hash=row.id_hash,
                key_id=key_id,
                csrf_token=row.csrf_token,
                created_at=now,
                last_seen_at=now,
                address=(address or "")[:64] or None,
            )
        )
    return session_id, row


def load_session(store: Store, session_id: str) -> UiSession | None:
    with store.read() as conn:
        r = conn.execute(
            sa.select(ui_sessions).where(ui_sessions.c.id_hash == session_hash(session_id))
        ).first()
    if r is None:
        return None
    return UiSession(r.id_hash, r.key_id, r.csrf_token, r.created_at, r.last_seen_at)


def touch_session(store: Store, id_hash: str, now: datetime) -> None:
    with store.write() as conn:
        conn.execute(
            ui_sessions.update().where(ui_sessions.c.id_hash == id_hash).values(last_seen_at=now)
        )


def end_session(store: Store, id_hash: str) -> None:
    with store.write() as conn:
        conn.execute(ui_sessions.delete().where(ui_sessions.c.id_hash == id_hash))


def end_key_sessions(store: Store, key_id: str) -> int:
    """End every session signed in with ``key_id`` (the key was revoked)."""
    with store.write() as conn:
        return int(
            conn.execute(ui_sessions.delete().where(ui_sessions.c.key_id == key_id)).rowcount
        )


def end_stale_sessions(store: Store, now: datetime, idle: float, absolute: float) -> int:
    with store.write() as conn:
        return int(
            conn.execute(
                ui_sessions.delete().where(
                    sa.or_(
                        ui_sessions.c.last_seen_at < now - timedelta(seconds=idle),
                        ui_sessions.c.created_at < now - timedelta(seconds=absolute),
                    )
                )
            ).rowcount
        )


__all__ = [
    "UiSession",
    "create_session",
    "end_key_sessions",
    "end_session",
    "end_stale_sessions",
    "load_session",
    "session_hash",
    "touch_session",
]
