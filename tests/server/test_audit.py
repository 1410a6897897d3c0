"""The audit log: reads and refusals are recorded; `audit verify` names the first bad record."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from _waiting import wait_for
from permatoken.server.audit import AuditLog, AuditRecord
from permatoken.store import Store

from .conftest import LiveBroker, add_manual


def _chain(store: Store, n: int = 6) -> None:
    AuditLog(store).append(
        [
            AuditRecord(
                f"key:k{i}",
                "token.read",
                "ok",
                target=f"acme/t{i}",
                source="127.0.0.1",
                detail={"version": i},
            )
            for i in range(1, n + 1)
        ]
    )


def test_reads_refusals_and_management_are_audited(live_broker: LiveBroker, new_token: Any) -> None:
    """Who read what from where, auth failures and denials land in the chain, which verifies."""
    add_manual(live_broker.store, "acme/wa", new_token())
    app_key = live_broker.key("app", "acme/*")
    assert live_broker.client(app_key).get("/v1/tokens/acme/wa").status_code == 200
    assert live_broker.client("pt_" + "x" * 43).get("/v1/tokens/acme/wa").status_code == 401
    assert (
        live_broker.client(live_broker.key("reader")).get("/v1/tokens/acme/wa").status_code == 403
    )
    admin = live_broker.client(live_broker.key("admin"))
    assert admin.delete("/v1/credentials/acme/wa").status_code == 204
    deadline = time.monotonic() + 5
    actions: set[str] = set()
    while (
        time.monotonic() < deadline
        and not {"token.read", "auth.failed", "denied.read_token"} <= actions
    ):
        time.sleep(0.05)
        actions = {r.action for r in AuditLog(live_broker.store).list(limit=50)}
    recs = AuditLog(live_broker.store).list(limit=50)
    read = next(r for r in recs if r.action == "token.read")
    assert (
        read.target == "acme/wa" and read.source == "127.0.0.1" and read.actor.startswith("key:k")
    )
    assert {"auth.failed", "denied.read_token", "credential.removed", "key.created"} <= {
        r.action for r in recs
    }
    assert AuditLog(live_broker.store).verify().ok


def test_intact_chain_verifies(store: Store, cli: Callable[..., Any]) -> None:
    _chain(store)
    r = cli("audit", "verify")
    assert r.rc == 0 and "intact: 6 records" in r.stdout


@pytest.mark.parametrize(
    ("tamper", "bad"),
    [
        ("UPDATE audit_log SET result = 'denied' WHERE seq = 3", 3),
        ("UPDATE audit_log SET target = 'acme/other' WHERE seq = 4", 4),
        ("DELETE FROM audit_log WHERE seq = 2", 2),
        (
            "UPDATE audit_log SET seq = 1000 WHERE seq = 3; "
            "UPDATE audit_log SET seq = 3 WHERE seq = 5; "
            "UPDATE audit_log SET seq = 5 WHERE seq = 1000",
            3,
        ),
    ],
    ids=["modified-result", "modified-target", "deleted", "swapped"],
)
def test_tampering_is_named_by_audit_verify(
    store: Store, store_url: str, raw_db: Any, cli: Callable[..., Any], tamper: str, bad: int
) -> None:
    """A row changed, deleted or reordered directly in the database: verify exits 1 naming it."""
    _chain(store)
    with raw_db(store_url) as conn:
        for statement in tamper.split("; "):
            conn.execute(sa.text(statement))
    r = cli("audit", "verify")
    assert r.rc == 1
    assert f"first bad record: {bad}" in r.stderr, r.stderr


def test_removed_newest_records_are_caught_with_a_recorded_head(
    store: Store, store_url: str, raw_db: Any, cli: Callable[..., Any]
) -> None:
    """Truncating the tail leaves a valid shorter chain; a recorded --head SEQ:HASH catches it."""
    _chain(store)
    head = cli("audit", "verify").stdout.split("head ")[1].strip()
    assert cli("audit", "verify", "--head", head).rc == 0
    with raw_db(store_url) as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 6"))
    r = cli("audit", "verify", "--head", head)
    assert r.rc == 1 and "record 6 is missing" in r.stderr


def test_audit_list_cli(store: Store, cli: Callable[..., Any]) -> None:
    _chain(store, 3)
    r = cli("audit", "list", "--json")
    assert r.rc == 0 and [x["seq"] for x in r.json()] == [3, 2, 1]


def test_buffered_reads_are_written_on_a_clean_shutdown(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """Reads wait in memory for their aggregation window; a clean stop writes them, with counts."""
    add_manual(live_broker.store, "acme/wa", new_token())
    client = live_broker.client(live_broker.key("app", "acme/*"))
    for _ in range(7):
        assert client.get("/v1/tokens/acme/wa").status_code == 200
    # A refused key is audited by the next background flush: once it is in the chain, a flush
    # has run after the reads (well inside their 10 s window) and must have left them buffered.
    assert live_broker.client("pt_" + "z" * 43).get("/v1/tokens/acme/wa").status_code == 401
    wait_for(
        lambda: any(r.action == "auth.failed" for r in AuditLog(live_broker.store).list(limit=50)),
        what="a background audit flush",
    )
    assert not [r for r in AuditLog(live_broker.store).list(limit=50) if r.action == "token.read"]
    live_broker.stop()
    reads = [r for r in AuditLog(live_broker.store).list(limit=50) if r.action == "token.read"]
    assert sum(int(r.detail["count"]) for r in reads) == 7
    assert all(r.target == "acme/wa" for r in reads)
    assert AuditLog(live_broker.store).verify().ok
