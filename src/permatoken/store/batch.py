"""Set-wise reads and writes for the scheduler's batched renewals (``scheduler/batch.py``).

Each function here does for a whole batch, in one statement (or a fixed few), what the
per-credential methods of :class:`~permatoken.store.repository.Store` do for one: so a tick's
statement count follows the number of steps, not the number of credentials in it.

The same promises hold as for the one-by-one methods:

- every rotation-step write is **fenced** (``WHERE lease_owner = :owner``) and answers the ids it
  really changed (``RETURNING``): a credential whose lease was lost drops out of the batch;
- a pending value is stored sealed with its credential id and version as associated data, in
  the same transaction as its ``version.pending`` event;
- promotion demotes the old ``current`` and promotes the ``pending`` version in one
  transaction, with the ``version.promoted`` events and one ``pg_notify`` per credential.

Every list argument is cut into chunks of :data:`CHUNK` ids so that a statement stays within
the bound-parameter limits of both engines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from .._exceptions import NotFoundError
from .._secret import Secret
from ..events import EventKind
from ..models import Credential, TokenVersion, VersionMeta, VersionState
from .records import aad_version, credential_record, meta_values, version_record
from .repository import NOTIFY_CHANNEL, Store
from .schema import credentials, events, versions
from .schema_scheduler import notices

CHUNK = 500
LIVE = (VersionState.PENDING.value, VersionState.CURRENT.value, VersionState.PREVIOUS.value)
_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for lo in range(0, len(items), size):
        yield items[lo : lo + size]


@dataclass(frozen=True)
class Loaded:
    """A credential as the batch needs it: the row, its current version (with the sealed value
    row, opened only when the issuer asks for it), the highest version number, the last
    rotation detail."""

    credential: Credential
    current: TokenVersion | None
    current_row: Mapping[str, Any] | None
    top_version: int
    detail: dict[str, Any] | None


def retake_leases(store: Store, names: Sequence[str], owner: str, ttl: float) -> set[str]:
    """Re-take the lease on each name (free, ours, or expired); the names now held."""
    now = store.clock.now()
    held: set[str] = set()
    with store.write() as conn:
        for part in chunks(names):
            res = conn.execute(
                credentials.update()
                .where(
                    credentials.c.name.in_(part),
                    sa.or_(
                        credentials.c.lease_owner.is_(None),
                        credentials.c.lease_owner == owner,
                        credentials.c.lease_expires_at < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=ttl))
                .returning(credentials.c.name)
            )
            held.update(res.scalars())
    return held


def load(store: Store, names: Sequence[str]) -> dict[str, Loaded]:
    """Credentials, their current version rows and their highest version number, by name."""
    cur = versions.alias("cur")
    # Correlated, so it reads each batch row's versions through (credential_id, version):
    # a GROUP BY subquery would aggregate every version stored, every tick.
    top = (
        sa.select(sa.func.max(versions.c.version))
        .where(versions.c.credential_id == credentials.c.id)
        .scalar_subquery()
        .label("top")
    )
    out: dict[str, Loaded] = {}
    with store.read() as conn:
        for part in chunks(names):
            q = (
                sa.select(credentials, *[c.label(f"v_{c.name}") for c in cur.c], top)
                .select_from(
                    credentials.outerjoin(
                        cur,
                        sa.and_(cur.c.credential_id == credentials.c.id, cur.c.state == "current"),
                    )
                )
                .where(credentials.c.name.in_(part))
            )
            for r in conn.execute(q).mappings():
                vrow = {c.name: r[f"v_{c.name}"] for c in cur.c} if r["v_id"] is not None else None
                current = version_record(vrow) if vrow is not None else None
                out[r["name"]] = Loaded(
                    credential_record(r, current.version if current else None),
                    current,
                    vrow,
                    int(r["top"] or 0),
                    dict(r["rotation_detail"]) if r["rotation_detail"] else None,
                )
    return out


def app_secrets(store: Store, app_ids: Iterable[str]) -> dict[str, Secret]:
    """The secrets of the given apps that exist (one read per app, not per credential)."""
    out: dict[str, Secret] = {}
    for app_id in sorted(set(app_ids)):
        try:
            out[app_id] = store.app_secret(app_id)
        except NotFoundError:
            continue
    return out


def fenced_update(
    conn: sa.Connection, owner: str, rows: Mapping[int, Mapping[str, Any]], **common: Any
) -> set[int]:
    """``UPDATE credentials`` of many rows at once while ``owner`` holds their lease.

    ``rows`` maps a credential id to its own column values (a ``CASE`` per column), ``common``
    holds the values shared by all. Returns the ids really updated.
    """
    done: set[int] = set()
    ids = list(rows)
    for part in chunks(ids):
        values: dict[str, Any] = dict(common)
        columns = {k for i in part for k in rows[i]}
        for col in columns:
            column = credentials.c[col]
            values[col] = sa.case(
                {i: sa.bindparam(None, rows[i][col], type_=column.type) for i in part},
                value=credentials.c.id,
                else_=column,
            )
        res = conn.execute(
            credentials.update()
            .where(credentials.c.id.in_(part), credentials.c.lease_owner == owner)
            .values(**values)
            .returning(credentials.c.id)
        )
        done.update(res.scalars())
    return done


def release(store: Store, names: Sequence[str], owner: str) -> None:
    if not names:
        return
    with store.write() as conn:
        for part in chunks(names):
            conn.execute(
                credentials.update()
                .where(credentials.c.name.in_(part), credentials.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )


def holders_of(store: Store, fingerprints: Iterable[str]) -> dict[str, list[tuple[str, int]]]:
    """``Store.live_versions_with_fingerprint`` for many fingerprints in one read."""
    wanted = sorted(set(fingerprints))
    out: dict[str, list[tuple[str, int]]] = {fp: [] for fp in wanted}
    with store.read() as conn:
        for part in chunks(wanted):
            rows = conn.execute(
                sa.select(versions.c.fingerprint, credentials.c.name, versions.c.version)
                .join(credentials, credentials.c.id == versions.c.credential_id)
                .where(versions.c.fingerprint.in_(part), versions.c.state.in_(LIVE))
            )
            for fp, name, number in rows:
                out[fp].append((name, number))
    return out


def record_many(
    conn: sa.Connection,
    kind: EventKind,
    items: Sequence[tuple[Credential, dict[str, Any]]],
    *,
    at: datetime,
    actor: str,
) -> None:
    """One ``events`` row per (credential, detail), in one insert."""
    if not items:
        return
    conn.execute(
        events.insert(),
        [
            {
                "credential_id": cred.id,
                "credential_name": cred.name,
                "kind": kind,
                "at": at,
                "actor": actor[:120],
                "detail": dict(detail),
            }
            for cred, detail in items
        ],
    )


@dataclass(frozen=True)
class NewPending:
    credential: Credential
    number: int
    token: Secret
    meta: VersionMeta


def insert_pending(store: Store, conn: sa.Connection, item: NewPending) -> bool:
    """What ``Store.add_pending`` writes, inside ``conn``'s transaction, unless a live version
    (pending, current or previous, of any credential) has the same fingerprint: then nothing is
    written and the answer is False (the caller decrypts those few to tell a real duplicate)."""
    now = store.clock.now()
    payload = json.dumps({"token": item.token.reveal()}).encode()
    sealed = store.keyring.seal(payload, aad_version(item.credential.id, item.number))
    row: dict[str, Any] = {
        "credential_id": item.credential.id,
        "version": item.number,
        "state": VersionState.PENDING.value,
        "ciphertext": sealed.ciphertext,
        "wrapped_key": sealed.wrapped_key,
        "kek_id": sealed.kek_id,
        "fingerprint": item.token.fingerprint,
        "created_at": now,
        "state_changed_at": now,
        **meta_values(item.meta),
    }
    taken = sa.exists().where(
        versions.c.fingerprint == item.token.fingerprint, versions.c.state.in_(LIVE)
    )
    values = sa.select(*[sa.literal(v, type_=versions.c[k].type) for k, v in row.items()])
    res = conn.execute(
        versions.insert().from_select(list(row), values.where(~taken)).returning(versions.c.id)
    )
    if res.first() is None:
        return False
    record_many(
        conn,
        EventKind.VERSION_PENDING,
        [(item.credential, {"version": item.number, "fingerprint": item.token.fingerprint})],
        at=now,
        actor="system",
    )
    return True


def update_meta(conn: sa.Connection, items: Sequence[tuple[int, int, VersionMeta]]) -> None:
    """``Store.update_version_meta`` for many (credential id, version, meta) at once."""
    if not items:
        return
    stmt = (
        versions.update()
        .where(
            versions.c.credential_id == sa.bindparam("b_cid"),
            versions.c.version == sa.bindparam("b_version"),
        )
        .values({k: sa.bindparam(f"b_{k}") for k in meta_values(VersionMeta())})
    )
    conn.execute(
        stmt,
        [
            {"b_cid": cid, "b_version": number, **{f"b_{k}": v for k, v in meta_values(m).items()}}
            for cid, number, m in items
        ],
    )


def promote(
    store: Store, conn: sa.Connection, items: Sequence[tuple[Credential, int]]
) -> dict[int, int | None]:
    """``Store.promote`` for many (credential, pending version number) at once.

    Returns, for each credential id whose pending version became current, the version that
    became ``previous`` (None if there was none). Others are left untouched.
    """
    now = store.clock.now()
    promoted: dict[int, int | None] = {}
    by_id = {cred.id: (cred, number) for cred, number in items}
    for part in chunks(list(by_id)):
        pairs = [(cid, by_id[cid][1]) for cid in part]
        pending = sa.tuple_(versions.c.credential_id, versions.c.version).in_(pairs)
        ready = sa.select(versions.c.credential_id).where(pending, versions.c.state == "pending")
        demoted: dict[int, int] = dict(
            conn.execute(
                versions.update()
                .where(
                    versions.c.state == VersionState.CURRENT.value,
                    versions.c.credential_id.in_(ready.scalar_subquery()),
                )
                .values(state=VersionState.PREVIOUS.value, state_changed_at=now)
                .returning(versions.c.credential_id, versions.c.version)
            )
            .tuples()
            .all()
        )
        done = conn.execute(
            versions.update()
            .where(pending, versions.c.state == VersionState.PENDING.value)
            .values(state=VersionState.CURRENT.value, state_changed_at=now)
            .returning(versions.c.credential_id)
        ).scalars()
        for cid in done:
            promoted[cid] = demoted.get(cid)
    record_many(
        conn,
        EventKind.VERSION_PROMOTED,
        [
            (by_id[cid][0], {"version": by_id[cid][1], "previous": prev})
            for cid, prev in promoted.items()
        ],
        at=now,
        actor="system",
    )
    if promoted and store.dialect == "postgresql":
        payloads = [
            json.dumps({"name": by_id[cid][0].name, "version": by_id[cid][1]}) for cid in promoted
        ]
        # One statement for every notification, delivered at commit like Store.promote's.
        conn.execute(
            sa.text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"),
            {"channel": NOTIFY_CHANNEL, "payloads": payloads},
        )
    return promoted


def noticed(
    store: Store, pairs: Sequence[tuple[str, int]], kinds: Iterable[str]
) -> set[tuple[str, int]]:
    """Which (credential name, version) pairs have a notice of one of ``kinds``."""
    found: set[tuple[str, int]] = set()
    kinds = list(kinds)
    if not pairs or not kinds:
        return found
    with store.read() as conn:
        for part in chunks(list(pairs)):
            rows = conn.execute(
                sa.select(notices.c.credential_name, notices.c.version).where(
                    sa.tuple_(notices.c.credential_name, notices.c.version).in_(part),
                    notices.c.event.in_(kinds),
                )
            )
            found.update((name, int(v)) for name, v in rows)
    return found


__all__ = [
    "CHUNK",
    "Loaded",
    "NewPending",
    "app_secrets",
    "chunks",
    "fenced_update",
    "holders_of",
    "insert_pending",
    "load",
    "noticed",
    "promote",
    "record_many",
    "release",
    "retake_leases",
    "update_meta",
]
