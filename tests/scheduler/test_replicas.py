"""Three `permatoken serve --no-api` replicas on one PostgreSQL and one sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from _live_sandbox import StateClock, ThreadSandbox
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.policy import DEFAULT_POLICY, renewal_due_at
from permatoken.settings import load_settings
from permatoken.store import open_store
from permatoken.timeutil import from_unix
from scheduler.world import DAY

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[list[dict[str, Any]], int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.received, server.server_address[1]  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sandbox() -> Iterator[ThreadSandbox]:
    with ThreadSandbox() as live:
        yield live


def _seed(pg_url: str, live: ThreadSandbox, n: int, home: Path) -> list[str]:
    """n credentials with 60-day tokens (meta-system-refresh), then jump to day 45: all due."""
    env = {"PERMATOKEN_HOME": str(home), "PERMATOKEN_DATABASE_URL": pg_url}
    os.environ.update(env)
    settings = load_settings()
    from conftest import init_store

    init_store(settings)
    state = live.state
    store = open_store(settings, clock=StateClock(state))
    app = state.fixtures()["apps"][0]
    store.put_app(app["id"], Secret(app["secret"]))
    names = []
    for i in range(n):
        tok = state.create_token("system_user_60d")
        name = f"t{i % 10}/c{i:04d}"
        meta = VersionMeta(
            token_type="SYSTEM_USER",
            issued_at=from_unix(tok["issued_at"]),
            expires_at=from_unix(tok["expires_at"]),
            is_valid=True,
        )
        store.add_credential(
            NewCredential(name=name, issuer="meta-system-refresh", app_id=app["id"]),
            Secret(tok["value"]),
            meta,
        )
        due = renewal_due_at(
            DEFAULT_POLICY,
            issued_at=meta.issued_at,
            expires_at=meta.expires_at,
            created_at=meta.issued_at or datetime.now(UTC),
            jitter_seed=name,
        )
        store.update_credential(name, next_due_at=due, next_action="renew")
        names.append(name)
    store.close()
    state.clock.advance(45 * DAY)
    return names


def _replicas(
    pg_url: str, live: ThreadSandbox, hook_port: int, owners: list[str]
) -> dict[str, subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env.update(
        {
            "PERMATOKEN_DATABASE_URL": pg_url,
            "PERMATOKEN_GRAPH_URL": live.url,
            "PERMATOKEN_CLOCK": "sandbox",
            "PERMATOKEN_SCHEDULER_INTERVAL": "0.2",
            "PERMATOKEN_DEBUG": "1",
            "PERMATOKEN_LOG_LEVEL": "WARNING",
            "PERMATOKEN_SCHEDULER_BATCH": "50",
            "PERMATOKEN_SCHEDULER_LEASE_TTL": "5",
            "PERMATOKEN_NOTIFY_URLS": json.dumps([f"json://127.0.0.1:{hook_port}/hook"]),
            "PERMATOKEN_NOTIFY_EVENTS": json.dumps(["renewed"]),
        }
    )
    return {
        o: subprocess.Popen(
            [sys.executable, "-m", "permatoken", "serve", "--no-api", "--owner", o],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for o in owners
    }


def _versions(pg_url: str) -> dict[str, int]:
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.name, max(v.version) FROM credentials c "
                "JOIN versions v ON v.credential_id = c.id GROUP BY c.name"
            )
        ).all()
    engine.dispose()
    return {r[0]: r[1] for r in rows}


def _leased_by(pg_url: str, owner: str, *, active_at: datetime | None = None) -> list[str]:
    """Credentials whose lease names ``owner`` (only leases still running at ``active_at``)."""
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    sql = "SELECT name FROM credentials WHERE lease_owner = :o"
    params: dict[str, object] = {"o": owner}
    if active_at is not None:
        sql += " AND lease_expires_at > :now"
        params["now"] = active_at
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).all()
    engine.dispose()
    return [r[0] for r in rows]


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, str]:
    out = {}
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for o, p in procs.items():
        try:
            stdout, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, _ = p.communicate()
        out[o] = stdout.decode("utf-8", "replace")
    return out


def _wait(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(1.0)
    return False


def test_three_replicas_renew_500_credentials_exactly_once_and_notify_once(
    pg_url: str,
    sandbox: ThreadSandbox,
    hook: tuple[list[dict[str, Any]], int],
    home: Path,
) -> None:
    """500 credentials due at once, 3 replicas: 500 exchanges, 500 renewals, 500 notices."""
    received, port = hook
    n = 500
    names = _seed(pg_url, sandbox, n, home)
    sandbox.state.clear_logs()
    started = time.monotonic()
    procs = _replicas(pg_url, sandbox, port, ["r1", "r2", "r3"])
    try:
        done = _wait(
            lambda: len(received) >= n and all(v == 2 for v in _versions(pg_url).values()), 800
        )
        elapsed = time.monotonic() - started
    finally:
        # Stopping is the barrier for "no straggler sends a duplicate": each replica finishes
        # its work and exits, and the notice counts below are read after the last exit.
        logs = _stop(procs)
    renewed = sum(v == 2 for v in _versions(pg_url).values())
    assert done, f"after {elapsed:.0f}s: {renewed} renewed, {len(received)} notices\n" + "\n".join(
        f"--- {o}\n{log[-2500:]}" for o, log in logs.items()
    )
    versions = _versions(pg_url)
    assert set(versions) == set(names) and set(versions.values()) == {2}
    exchanges = sandbox.state.calls("GET /oauth/access_token")
    assert len(exchanges) == 500
    titles = Counter(p["title"] for p in received)
    assert len(titles) == 500 and set(titles.values()) == {1}
    print(f"\n500 renewals by 3 replicas in {elapsed:.1f}s; notices {len(received)}")
    for o, log in logs.items():
        assert "Traceback" not in log, f"{o}:\n{log[-3000:]}"


def test_a_replica_killed_mid_batch_has_its_claims_finished_by_the_others(
    pg_url: str,
    sandbox: ThreadSandbox,
    hook: tuple[list[dict[str, Any]], int],
    home: Path,
) -> None:
    """SIGKILL one replica mid-batch: after its lease expires the others finish its claims."""
    _, port = hook
    names = _seed(pg_url, sandbox, 300, home)
    # Slow Meta down so the batch is still running when the replica dies.
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={
            "endpoint": "GET /oauth/access_token",
            "kind": "latency",
            "latency_seconds": 0.03,
            "count": None,
        },
    ).raise_for_status()
    sandbox.state.clear_logs()
    procs = _replicas(pg_url, sandbox, port, ["r1", "r2", "r3"])
    try:
        assert _wait(
            lambda: (
                len(_leased_by(pg_url, "r1")) >= 10
                and sum(v == 2 for v in _versions(pg_url).values()) >= 30
            ),
            60,
        )
        procs["r1"].send_signal(signal.SIGKILL)
        procs["r1"].wait(10)
        orphaned = _leased_by(pg_url, "r1")
        killed_at = time.monotonic()
        assert orphaned, "r1 held no claims when it died"
        assert _wait(lambda: all(v == 2 for v in _versions(pg_url).values()), 120)
        recovered_in = time.monotonic() - killed_at
    finally:
        _stop(procs)
    versions = _versions(pg_url)
    assert set(versions) == set(names) and set(versions.values()) == {2}
    # A claim r1 finished before dying may still name it as owner, but every lease it held has
    # expired (an expired lease is no lease): nothing is stuck behind the dead replica.
    # Leases are written on the sandbox's clock (the replicas follow it).
    assert not _leased_by(
        pg_url, "r1", active_at=datetime.fromtimestamp(sandbox.state.clock.now(), UTC)
    )
    exchanges = sandbox.state.calls("GET /oauth/access_token")
    # At most the one exchange in flight when r1 died is repeated (its answer was never stored).
    assert 300 <= len(exchanges) <= 301
    print(
        f"\nr1 killed holding {len(orphaned)} claims; all 300 renewed {recovered_in:.1f}s later; "
        f"exchanges {len(exchanges)}"
    )
