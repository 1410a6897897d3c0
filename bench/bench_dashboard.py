"""The dashboard's fleet overview with 100 vs 100,000 credentials stored (goal: at most 2x).

For each size, a fresh SQLite store is bulk-filled (rows inserted directly: 100 tenants, healths
and expiries spread over 120 days, renewals planned), then a real ``permatoken serve
--no-scheduler`` is started and signed in to through ``/ui/login``. Timed over HTTP on loopback,
median of N requests after a warm-up, each scenario at both sizes in the same run:

- ``/ui/`` as an admin (no grants: everything counted and charted);
- ``/ui/`` as a reader granted ``t007/**`` (grants applied in SQL);
- ``/ui/?health=expiring&page=3`` and ``/ui/?q=c0000`` (filters, a later page, free text).

The baseline is the same page with 100 credentials: the ratio shows how the page's cost grows
with the fleet. Prints milliseconds and ratios.

    python bench/bench_dashboard.py [--large 100000] [--requests 100]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

HEALTHS = ["ok"] * 14 + ["expiring", "renewing", "failing", "needs_human", "expired", "invalid"]
SCENARIOS = [
    ("admin, everything", "admin", "/ui/"),
    ("reader t007/**", "reader", "/ui/"),
    ("health filter, page 3", "admin", "/ui/?health=expiring&page=3"),
    ("search (name prefix)", "admin", "/ui/?q=t042/c0004"),
]


def seed(home: Path, n: int) -> dict[str, str]:
    """A store with ``n`` credentials (one current version each); returns API keys by role."""
    import sqlalchemy as sa

    from permatoken.crypto import generate_key, write_key_file
    from permatoken.server.keystore import KeyStore
    from permatoken.settings import load_settings
    from permatoken.store import engine as store_engine
    from permatoken.store import open_store
    from permatoken.store.repository import _aad_version
    from permatoken.store.schema import credentials, versions

    settings = load_settings(home=home)
    home.mkdir(parents=True, exist_ok=True)
    write_key_file(settings.resolved_key_file, [generate_key()])
    engine = store_engine.create_engine(settings.resolved_database_url)
    store_engine.upgrade(engine)
    engine.dispose()
    store = open_store(settings)
    now = datetime.now(UTC)
    with store.write() as conn:
        for lo in range(1, n + 1, 5000):
            ids = range(lo, min(lo + 5000, n + 1))
            conn.execute(
                credentials.insert(),
                [
                    {
                        "id": i,
                        "name": f"t{i % 100:03d}/c{i:06d}",
                        "tenant": f"t{i % 100:03d}",
                        "issuer": "meta-system-refresh" if i % 3 else "manual",
                        "waba_ids": [],
                        "options": {},
                        "policy": {},
                        "health": HEALTHS[i % len(HEALTHS)],
                        "next_due_at": now + timedelta(days=(i * 7919) % 80),
                        "next_action": "renew",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            sealed = {
                i: store.keyring.seal(
                    b'{"token":"EAAB' + os.urandom(60).hex().encode() + b'"}', _aad_version(i, 1)
                )
                for i in ids
            }
            conn.execute(
                versions.insert(),
                [
                    {
                        "credential_id": i,
                        "version": 1,
                        "state": "current",
                        "ciphertext": sealed[i].ciphertext,
                        "wrapped_key": sealed[i].wrapped_key,
                        "kek_id": sealed[i].kek_id,
                        "fingerprint": f"sha256:{i:012x}",
                        "token_type": "SYSTEM_USER",
                        "expires_at": now + timedelta(days=(i * 7919) % 120),
                        "scopes": [],
                        "waba_ids": [],
                        "created_at": now,
                        "state_changed_at": now,
                    }
                    for i in ids
                ],
            )
        if store.dialect == "sqlite":
            conn.execute(sa.text("ANALYZE"))
    ks = KeyStore(store)
    keys = {
        "admin": ks.create("admin", actor="bench")[1].reveal(),
        "reader": ks.create("reader", ["t007/**"], actor="bench")[1].reveal(),
    }
    store.close()
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=True)
    page = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text[:500]
    r = client.post(
        "/ui/login",
        data={"key": key, "csrf": csrf.group(1), "next": "/ui/"},
        follow_redirects=False,  # the overview's first load is timed as "first request"
    )
    assert r.status_code == 303, r.status_code
    return client


def measure(n: int, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        keys = seed(home, n)
        print(f"  seeded {n:,} credentials in {time.perf_counter() - started:.1f} s", flush=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")}
        env["PERMATOKEN_HOME"] = str(home)
        proc = subprocess.Popen(
            [sys.executable, "-m", "permatoken", "serve", "--no-scheduler", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"serve did not start: {proc.stderr.read() if proc.stderr else ''}"
                    )
                time.sleep(0.05)
            clients = {role: signed_in(url, key) for role, key in keys.items()}
            out = {}
            for label, role, path in SCENARIOS:
                c = clients[role]
                t0 = time.perf_counter()
                assert c.get(path).status_code == 200
                out["cold " + label] = (time.perf_counter() - t0) * 1000
                for _ in range(10):
                    assert c.get(path).status_code == 200
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    r = c.get(path)
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200
                out[label] = statistics.median(times) * 1000
            for c in clients.values():
                c.close()
            return out
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    print(f"dashboard overview: {args.small:,} vs {args.large:,} credentials (SQLite)")
    small = measure(args.small, args.requests)
    large = measure(args.large, args.requests)
    print("first request per page and filter (counts and timeline computed):")
    for label, _, _ in SCENARIOS:
        cold = "cold " + label
        print(f"  {label:26} {small[cold]:8.1f} ms {large[cold]:10.1f} ms")
    print("steady state, median (counts and timeline reused for ui.summary_ttl = 10 s):")
    print(f"{'page':28} {args.small:>10,} {args.large:>12,}   ratio")
    worst = 0.0
    for label, _, _ in SCENARIOS:
        ratio = large[label] / small[label]
        worst = max(worst, ratio)
        print(f"{label:28} {small[label]:8.1f} ms {large[label]:10.1f} ms   {ratio:5.2f}x")
    print(f"worst ratio {worst:.2f}x (goal ≤ 2x)")


if __name__ == "__main__":
    main()
