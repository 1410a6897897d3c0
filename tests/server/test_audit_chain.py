"""The audit chain's link: an attacker who knows the hash function still cannot rewrite a record.

``test_audit.py`` tampers with single rows; here the attacker recomputes hashes as they go, which
only a hash that covers the previous record's hash (and a head recorded elsewhere) can stop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from permatoken.server.audit import GENESIS, AuditLog, AuditRecord, ChainedRecord, record_hash
from permatoken.store import Store

AT = datetime(2027, 1, 4, 9, 0, 0, 123456, tzinfo=UTC)


def _chain(store: Store, n: int = 6) -> list[ChainedRecord]:
    AuditLog(store).append(
        [
            AuditRecord(f"key:k{i}", "token.read", "ok", target=f"acme/t{i}", source="127.0.0.1")
            for i in range(1, n + 1)
        ]
    )
    return list(AuditLog(store).rows())


def _forge(conn: sa.Connection, rec: ChainedRecord, prev_hash: str, **changes: Any) -> str:
    """Rewrite ``rec`` with ``changes`` and a freshly computed hash, as an attacker would."""
    fields = {
        "at": rec.at,
        "actor": rec.actor,
        "action": rec.action,
        "target": rec.target,
        "source": rec.source,
        "result": rec.result,
        "detail": rec.detail,
    } | changes
    digest = record_hash(rec.seq, prev_hash=prev_hash, **fields)
    conn.execute(
        sa.text(
            "UPDATE audit_log SET result = :result, target = :target, prev_hash = :prev, "
            "hash = :hash WHERE seq = :seq"
        ),
        {
            "result": fields["result"],
            "target": fields["target"],
            "prev": prev_hash,
            "hash": digest,
            "seq": rec.seq,
        },
    )
    return digest


def test_record_hash_golden_vector() -> None:
    """The chain hash is SHA-256 over this exact canonical JSON, previous hash included."""
    body = (
        '[1,"2027-01-04T09:00:00.123456+00:00","key:k1","token.read","acme/wa","127.0.0.1",'
        '"ok",{"count":3,"version":2},"' + GENESIS + '"]'
    )
    first = "7d55cab0629ea2917c8a0da0e6eab6ea6cffd20d51e129ea3bfef0efbfb85155"
    assert hashlib.sha256(body.encode()).hexdigest() == first
    detail = {"version": 2, "count": 3}
    got = record_hash(1, AT, "key:k1", "token.read", "acme/wa", "127.0.0.1", "ok", detail, GENESIS)
    assert got == first
    second = record_hash(2, AT, "cli", "credential.removed", None, None, "ok", {}, first)
    assert second == "0af8a8e85947fc9df7f5efc4de91fc412f54d4933567d1bcab6b2439281e7c50"
    # The same record after another predecessor is another record.
    assert record_hash(2, AT, "cli", "credential.removed", None, None, "ok", {}, GENESIS) != second


def test_a_rewritten_record_with_the_next_link_repointed_is_named(
    store: Store, store_url: str, raw_db: Any, cli: Callable[..., Any]
) -> None:
    """Record 3 rewritten with its hash recomputed and record 4's link re-pointed to it: record 4
    no longer matches its own hash, which covers the link, so verify names it."""
    rows = _chain(store)
    with raw_db(store_url) as conn:
        forged = _forge(conn, rows[2], rows[1].hash, result="denied")
        conn.execute(sa.text("UPDATE audit_log SET prev_hash = :h WHERE seq = 4"), {"h": forged})
    r = cli("audit", "verify")
    assert r.rc == 1
    assert "first bad record: 4" in r.stderr, r.stderr
    assert "record 4 was modified" in r.stderr


def test_a_rewritten_tail_verifies_but_a_recorded_head_catches_it(
    store: Store, store_url: str, raw_db: Any, cli: Callable[..., Any]
) -> None:
    """Rewriting record 3 and re-chaining every record after it yields a valid chain (the
    documented limit), but not the head recorded before: verify --head exits 1."""
    rows = _chain(store)
    head = cli("audit", "verify").stdout.split("head ")[1].strip()
    with raw_db(store_url) as conn:
        prev = _forge(conn, rows[2], rows[1].hash, target="acme/elsewhere")
        for rec in rows[3:]:
            prev = _forge(conn, rec, prev)
    assert cli("audit", "verify").rc == 0
    r = cli("audit", "verify", "--head", head)
    assert r.rc == 1 and "record 6 does not match the recorded head" in r.stderr, r.stderr
