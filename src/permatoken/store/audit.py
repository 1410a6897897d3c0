"""The tamper-evident audit log: a hash chain over ``audit_log`` rows.

Each record's hash is SHA-256 over its canonical JSON (sequence number, time, actor, action,
target, source, result, detail) and the previous record's hash. Sequence numbers are assigned
by the appender (previous + 1) while it holds the chain lock, so a modified row breaks its own
hash, a deleted row leaves a gap and breaks the next link, and reordered rows break both.
Appends are serialised: ``pg_advisory_xact_lock`` on PostgreSQL, the database write lock
(``BEGIN IMMEDIATE``) on SQLite.

Honest limit: removing the *newest* records leaves a valid shorter chain. ``verify`` prints the
head (sequence and hash) so it can be recorded elsewhere and compared with ``--head``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..timeutil import ensure_utc
from .schema_broker import audit_log

if TYPE_CHECKING:
    from .repository import Store

GENESIS = "0" * 64
#: Arbitrary constant naming the audit chain's advisory lock on PostgreSQL.
_PG_LOCK_KEY = 0x7065726D61  # "perma"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened, before it is chained. Never put a secret in any field."""

    actor: str
    action: str
    result: str
    target: str | None = None
    source: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class ChainedRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    source: str | None
    result: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "source": self.source,
            "result": self.result,
            "detail": self.detail,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None


def record_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    source: str | None,
    result: str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The chain hash of one record (pure)."""
    stamp = ensure_utc(at)
    assert stamp is not None
    body = json.dumps(
        [
            seq,
            stamp.isoformat(timespec="microseconds"),
            actor,
            action,
            target,
            source,
            result,
            detail,
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # pragma: no mutate (the default: dropping it changes nothing)
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _clip(value: str | None, n: int) -> str | None:
    return None if value is None else value[:n]


class AuditLog:
    """Appends to, reads and verifies the chain in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _lock_and_head(self, conn: sa.Connection) -> tuple[int, str]:
        if self.store.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        newest = sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc())
        row = conn.execute(newest.limit(1)).first()  # pragma: no mutate (.first() reads one row)
        return (row[0], row[1]) if row else (0, GENESIS)

    def append_in(self, conn: sa.Connection, records: Sequence[AuditRecord]) -> int:
        """Chain ``records`` inside the caller's write transaction; returns the last sequence."""
        seq, prev = self._lock_and_head(conn)
        rows = []
        for rec in records:
            seq += 1
            detail = json.loads(json.dumps(dict(rec.detail), default=str))
            at = ensure_utc(rec.at) or datetime.now(UTC)
            actor, action = rec.actor[:120], rec.action[:60]
            target, source, result = _clip(rec.target, 200), _clip(rec.source, 80), rec.result[:40]
            digest = record_hash(seq, at, actor, action, target, source, result, detail, prev)
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "source": source,
                    "result": result,
                    "detail": detail,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        if rows:
            conn.execute(audit_log.insert(), rows)
        return seq

    def append(self, records: Sequence[AuditRecord]) -> int:
        with self.store.write() as conn:
            return self.append_in(conn, records)

    def rows(self, *, after: int = 0, batch: int = 1000) -> Iterator[ChainedRecord]:
        """Every record in sequence order, read in batches."""
        last = after
        while True:
            with self.store.read() as conn:
                chunk = (
                    conn.execute(
                        sa.select(audit_log)
                        .where(audit_log.c.seq > last)
                        .order_by(audit_log.c.seq)
                        .limit(batch)
                    )
                    .mappings()
                    .all()
                )
            for r in chunk:
                yield _chained(r)
            if len(chunk) < batch:
                return
            last = chunk[-1]["seq"]

    def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        action: str | None = None,
        target: str | None = None,
        targets: Iterable[str] | None = None,
    ) -> list[ChainedRecord]:
        """Newest first."""
        q = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        if before is not None:
            q = q.where(audit_log.c.seq < before)
        if action is not None:
            q = q.where(audit_log.c.action == action)
        if target is not None:
            q = q.where(audit_log.c.target == target)
        with self.store.read() as conn:
            return [_chained(r) for r in conn.execute(q).mappings()]

    def verify(self) -> Verification:
        return verify_chain(self.rows())


def verify_chain(rows: Iterable[ChainedRecord]) -> Verification:
    """Walk the chain; name the first record that was modified, removed or moved (pure)."""
    expected_seq, prev = 1, GENESIS
    count = 0
    for r in rows:
        if r.seq > expected_seq:
            missing = (
                f"{expected_seq}" if r.seq == expected_seq + 1 else f"{expected_seq}-{r.seq - 1}"
            )
            return Verification(
                False,
                count,
                expected_seq - 1,
                prev,
                expected_seq,
                f"record {missing} is missing (deleted) before record {r.seq}",
            )
        if r.seq < expected_seq:
            return Verification(
                False, count, expected_seq - 1, prev, r.seq, f"record {r.seq} is out of order"
            )
        digest = record_hash(
            r.seq, r.at, r.actor, r.action, r.target, r.source, r.result, r.detail, r.prev_hash
        )
        if digest != r.hash:
            return Verification(
                False,
                count,
                r.seq - 1,
                prev,
                r.seq,
                f"record {r.seq} was modified or moved (its content does not match its hash)",
            )
        if r.prev_hash != prev:
            return Verification(
                False,
                count,
                r.seq - 1,
                prev,
                r.seq,
                f"record {r.seq} does not follow record {r.seq - 1} (the chain link is broken)",
            )
        prev = r.hash
        count += 1
        expected_seq += 1
    return Verification(True, count, expected_seq - 1, prev)


def _chained(r: Any) -> ChainedRecord:
    at = ensure_utc(r["at"])
    assert at is not None
    return ChainedRecord(
        r["seq"],
        at,
        r["actor"],
        r["action"],
        r["target"],
        r["source"],
        r["result"],
        dict(r["detail"] or {}),
        r["prev_hash"],
        r["hash"],
    )


__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditRecord",
    "ChainedRecord",
    "Verification",
    "record_hash",
    "verify_chain",
]
