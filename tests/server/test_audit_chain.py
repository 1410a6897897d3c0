"""The audit chain's link: an attacker who knows the hash function still cannot rewrite a record.

``test_audit.py`` tampers with single rows; here the attacker recomputes hashes as they go, which
only a hash that covers the previous record's hash (and a head recorded elsewhere) can stop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from _waiting import pg_lock_waiters, wait_for
from permatoken.server.audit import (
    GENESIS,
    AuditLog,
    AuditRecord,
    ChainedRecord,
    Verification,
    record_hash,
    verify_chain,
)
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


def test_record_hash_golden_vector_for_text_beyond_ascii_and_values_beyond_json() -> None:
    """Non-ASCII text is hashed as \\u escapes and a value JSON cannot hold as its str()."""
    body = (
        '[3,"2027-01-04T09:00:00.123456+00:00","key:k1","credential.updated","acme/wa",null,'
        '"ok",{"label":"Z\\u00fcrich","when":"2027-01-04 09:00:00.123456+00:00"},"' + GENESIS + '"]'
    )
    expected = "1d82a3da5b74848f4c0a7e517c876c0f525bb697e66b0ee5712fe7ac9cd44d0e"
    assert hashlib.sha256(body.encode()).hexdigest() == expected
    detail = {"label": "Zürich", "when": AT}
    got = record_hash(3, AT, "key:k1", "credential.updated", "acme/wa", None, "ok", detail, GENESIS)
    assert got == expected


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


# --- verify_chain, pure: every way a chain breaks, and what it reports ------------------------


def _records(n: int) -> list[ChainedRecord]:
    out: list[ChainedRecord] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        fields = ("key:k1", "token.read", f"acme/t{seq}", "10.0.0.1", "ok", {"seq": seq})
        digest = record_hash(seq, AT, *fields, prev)
        out.append(ChainedRecord(seq, AT, *fields, prev, digest))
        prev = digest
    return out


def test_an_intact_chain_reports_its_length_and_head() -> None:
    rows = _records(4)
    assert verify_chain(rows) == Verification(True, 4, 4, rows[-1].hash)
    assert verify_chain([]) == Verification(True, 0, 0, GENESIS)


def test_deleted_records_are_named_as_a_range() -> None:
    rows = _records(6)
    assert verify_chain([*rows[:1], *rows[3:]]) == Verification(
        False, 1, 1, rows[0].hash, 2, "record 2-3 is missing (deleted) before record 4"
    )
    assert verify_chain(rows[1:]) == Verification(
        False, 0, 0, GENESIS, 1, "record 1 is missing (deleted) before record 2"
    )


def test_a_record_out_of_order_is_named() -> None:
    rows = _records(4)
    assert verify_chain([rows[0], rows[1], rows[0]]) == Verification(
        False, 2, 2, rows[1].hash, 1, "record 1 is out of order"
    )


def test_a_modified_record_is_named() -> None:
    rows = _records(3)
    rows[1] = dataclasses.replace(rows[1], result="denied")
    assert verify_chain(rows) == Verification(
        False,
        1,
        1,
        rows[0].hash,
        2,
        "record 2 was modified or moved (its content does not match its hash)",
    )


def test_a_record_rehashed_onto_another_predecessor_breaks_the_link() -> None:
    """Record 3 re-chained (hash recomputed) after a predecessor that is not record 2."""
    rows = _records(3)
    fields = (rows[2].actor, rows[2].action, rows[2].target, rows[2].source, rows[2].result)
    forged = record_hash(3, AT, *fields, rows[2].detail, rows[0].hash)
    rows[2] = dataclasses.replace(rows[2], prev_hash=rows[0].hash, hash=forged)
    assert verify_chain(rows) == Verification(
        False,
        2,
        2,
        rows[1].hash,
        3,
        "record 3 does not follow record 2 (the chain link is broken)",
    )


def test_a_record_as_json() -> None:
    rec = _records(1)[0]
    assert rec.to_json() == {
        "seq": 1,
        "at": "2027-01-04T09:00:00.123456Z",
        "actor": "key:k1",
        "action": "token.read",
        "target": "acme/t1",
        "source": "10.0.0.1",
        "result": "ok",
        "detail": {"seq": 1},
        "hash": rec.hash,
    }


# --- the stored chain ------------------------------------------------------------------------


def test_overlong_fields_are_clipped_before_they_are_hashed(store: Store) -> None:
    """Columns have limits (actor 120, action 60, target 200, source 80, result 40): what is
    stored, hashed and verified is the clipped value, on either database."""
    log = AuditLog(store)
    log.append(
        [AuditRecord("a" * 130, "b" * 70, "c" * 50, target="d" * 250, source="e" * 100, at=AT)]
    )
    [rec] = log.rows()
    assert (rec.actor, rec.action, rec.target, rec.source, rec.result) == (
        "a" * 120,
        "b" * 60,
        "d" * 200,
        "e" * 80,
        "c" * 40,
    )
    assert log.append([AuditRecord("cli", "x", "ok")]) == 2  # returns the last sequence number
    assert log.verify().ok


def test_details_are_stored_as_json_and_times_in_utc(store: Store) -> None:
    """A naive time is UTC; a detail value JSON cannot hold is stored as its text."""
    log = AuditLog(store)
    naive = datetime(2027, 1, 4, 9, 0, 0, 123456)
    log.append([AuditRecord("cli", "x", "ok", detail={"when": AT, "n": 3}, at=naive)])
    [rec] = log.rows()
    assert rec.at == AT
    assert rec.detail == {"when": str(AT), "n": 3}
    assert rec.target is None and rec.source is None
    assert log.verify().ok


def test_a_record_without_a_time_is_stamped_in_utc(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the machine's local time zone is."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        before = datetime.now(UTC)
        AuditLog(store).append([AuditRecord("cli", "x", "ok", at=None)])  # type: ignore[arg-type]
        after = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    [rec] = AuditLog(store).rows()
    assert before <= rec.at <= after


def test_listing_shows_the_newest_100_by_default(store: Store) -> None:
    AuditLog(store).append([AuditRecord("cli", "x", "ok") for _ in range(101)])
    listed = AuditLog(store).list()
    assert [r.seq for r in listed] == list(range(101, 1, -1))


def test_rows_are_read_in_batches_and_listed_newest_first(store: Store) -> None:
    log = AuditLog(store)
    log.append(
        [
            AuditRecord(
                "cli", "token.read" if i % 2 else "key.created", "ok", target=f"acme/t{i % 3}"
            )
            for i in range(1, 8)
        ]
    )
    assert [r.seq for r in log.rows(batch=2)] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.seq for r in log.rows(after=5, batch=1)] == [6, 7]
    assert [r.seq for r in log.rows(after=7)] == []
    assert [r.seq for r in log.list()] == [7, 6, 5, 4, 3, 2, 1]
    assert [r.seq for r in log.list(limit=2)] == [7, 6]
    assert [r.seq for r in log.list(before=3)] == [2, 1]
    assert [r.seq for r in log.list(action="key.created")] == [6, 4, 2]
    assert [r.seq for r in log.list(target="acme/t1")] == [7, 4, 1]
    assert AuditLog(store).append([]) == 7  # nothing to write: the head stays
    assert log.verify() == Verification(True, 7, 7, log.list(limit=1)[0].hash)


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_concurrent_appenders_take_turns_on_postgresql(store: Store, store_url: str) -> None:
    """Appender A has read the chain's head but not written yet: B waits for A's chain lock,
    then chains after A's records. No sequence number is taken twice; the chain verifies."""
    log = AuditLog(store)
    log.append([AuditRecord("seed", "x", "ok")])
    read_head, resume = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pause_a_after_the_head(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name == "appender-a" and "audit_log.seq DESC" in statement:
            read_head.set()
            resume.wait(60)

    def append(actor: str) -> None:
        try:
            log.append([AuditRecord(actor, "x", "ok") for _ in range(3)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    ta = threading.Thread(target=append, args=("a",), name="appender-a")
    tb = threading.Thread(target=append, args=("b",), name="appender-b")
    sa.event.listen(store.engine, "after_cursor_execute", pause_a_after_the_head)
    try:
        ta.start()
        assert read_head.wait(30), "appender A never read the head"
        tb.start()
        # B either shows up waiting for A's lock, or (without one) writes at once.
        wait_for(
            lambda: pg_lock_waiters(store_url) > 0 or not tb.is_alive(),
            what="appender B to wait or finish",
        )
        b_waited = tb.is_alive()
    finally:
        resume.set()
        ta.join(30)
        tb.join(30)
        sa.event.remove(store.engine, "after_cursor_execute", pause_a_after_the_head)
    assert b_waited, "appender B did not wait for the chain lock"
    assert errors == []
    assert [(r.seq, r.actor) for r in log.rows()] == [
        (1, "seed"),
        (2, "a"),
        (3, "a"),
        (4, "a"),
        (5, "b"),
        (6, "b"),
        (7, "b"),
    ]
    assert log.verify().ok


def test_rows_are_read_a_batch_at_a_time(store: Store) -> None:
    """Memory stays bounded: 1,000 records per query by default, never all of them at once."""
    log = AuditLog(store)
    log.append([AuditRecord("cli", "x", "ok") for _ in range(1000)])
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM audit_log" in statement:
            selects.append(statement)

    sa.event.listen(store.engine, "after_cursor_execute", count)
    try:
        assert len(list(log.rows())) == 1000
        assert len(selects) == 2  # a full batch, then an empty one
        selects.clear()
        assert [r.seq for r in log.rows(after=993, batch=2)] == [994, 995, 996, 997, 998, 999, 1000]
        assert len(selects) == 4  # 2 + 2 + 2 + 1
    finally:
        sa.event.remove(store.engine, "after_cursor_execute", count)
