"""Scale: a tick's cost follows the work due, not the credentials stored (PostgreSQL)."""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from permatoken.meta.graph import GraphClient
from permatoken.rotation import RenewalEngine
from permatoken.scheduler import PolicyLayers, Scheduler
from permatoken.settings import load_settings
from permatoken.store import open_store
from permatoken.store.schema import credentials, versions
from permatoken.timeutil import ManualClock

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

DUE = 100


def _fill(conn: sa.Connection, start: int, count: int, now: Any, *, due: bool) -> None:
    """Bulk rows without encryption work: only the due ones get a (dummy) current version."""
    rows = [
        {
            "name": f"t{i % 500}/c{i:06d}",
            "tenant": f"t{i % 500}",
            "issuer": "manual",
            "waba_ids": [],
            "options": {},
            "policy": {},
            "health": "ok",
            "next_due_at": now - timedelta(seconds=60) if due else now + timedelta(days=1 + i % 50),
            "next_action": "remind" if due else "inspect",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(start, start + count)
    ]
    for chunk in range(0, len(rows), 5000):
        conn.execute(credentials.insert(), rows[chunk : chunk + 5000])
    if due:
        ids = conn.execute(
            sa.select(credentials.c.id).where(credentials.c.next_action == "remind")
        ).scalars()
        conn.execute(
            versions.insert(),
            [
                {
                    "credential_id": cid,
                    "version": 1,
                    "state": "current",
                    "ciphertext": b"x",
                    "wrapped_key": b"x",
                    "kek_id": "k",
                    "fingerprint": "f",
                    "scopes": [],
                    "waba_ids": [],
                    "expires_at": now + timedelta(days=30),
                    "created_at": now,
                    "state_changed_at": now,
                }
                for cid in ids
            ],
        )


def _measure(sched: Scheduler, conn_url: str, now: Any, rounds: int = 5) -> float:
    """Median seconds of a tick that claims and works ``DUE`` credentials."""
    engine = sa.create_engine(conn_url, poolclass=sa.pool.NullPool)
    timings = []
    for _ in range(rounds):
        with engine.begin() as conn:  # make the same 100 due again
            conn.execute(
                credentials.update()
                .where(
                    credentials.c.next_action.in_(["remind", "inspect"]),
                    credentials.c.id.in_(sa.select(versions.c.credential_id)),
                )
                .values(next_due_at=now - timedelta(seconds=60), next_action="remind")
            )
        t = time.perf_counter()
        report = sched.tick()
        timings.append(time.perf_counter() - t)
        assert report.claimed == DUE, report
    engine.dispose()
    return statistics.median(timings)


def test_tick_cost_follows_due_work_not_stored_credentials(pg_url: str, home: Path) -> None:
    os.environ.update({"PERMATOKEN_HOME": str(home), "PERMATOKEN_DATABASE_URL": pg_url})
    from conftest import init_store

    settings = load_settings()
    init_store(settings)
    clock = ManualClock()
    now = clock.now()
    store = open_store(settings, clock=clock)
    policies = PolicyLayers(settings, store)
    engine = RenewalEngine(
        store,
        GraphClient("http://127.0.0.1:9"),
        clock=clock,
        owner="scale",
        lease_ttl=settings.scheduler_lease_ttl,
        policy_resolver=policies.for_credential,
    )
    sched = Scheduler(settings, store, engine, policies=policies, clock=clock)
    raw = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with raw.begin() as conn:
            _fill(conn, 0, DUE, now, due=True)
            _fill(conn, DUE, 1_000 - DUE, now, due=False)
        with raw.connect() as conn:
            conn.execute(sa.text("COMMIT"))
            conn.execute(sa.text("ANALYZE credentials"))
        small = _measure(sched, pg_url, now)
        t = time.perf_counter()
        with raw.begin() as conn:
            _fill(conn, 1_000, 99_000, now, due=False)
        filled = time.perf_counter() - t
        with raw.connect() as conn:
            conn.execute(sa.text("COMMIT"))
            conn.execute(sa.text("ANALYZE credentials"))
            stored = conn.execute(sa.text("SELECT count(*) FROM credentials")).scalar_one()
        large = _measure(sched, pg_url, now)
        query = sched.claim_query(now).compile(
            dialect=raw.dialect, compile_kwargs={"literal_binds": True}
        )
        with raw.connect() as conn:
            plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {query}")))
    finally:
        raw.dispose()
        engine.close()
        store.close()
    assert stored == 100_000
    assert "ix_credentials_next_due_at" in plan, plan
    assert "Seq Scan" not in plan, plan
    print(f"\nbulk insert of 99,000 rows: {filled:.1f}s")
    print(
        f"tick with {DUE} due: {small * 1000:.0f} ms at 1,000 stored, "
        f"{large * 1000:.0f} ms at 100,000 stored (ratio {large / small:.2f})"
    )
    print(plan)
