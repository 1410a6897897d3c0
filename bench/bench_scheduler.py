"""One scheduler tick of 1,000 due renewals with 10^3 and 10^5 credentials stored.

Real parts: PostgreSQL, the sandbox in a child process (``tests/_live_sandbox.ProcessSandbox``,
so Meta's imitation does not share the scheduler's GIL) with the same injected upstream latency
on every Graph call for every path, real encryption of every token value.

Setup: ``--due`` credentials with real sandbox tokens (60-day system-user tokens, issuer
``meta-system-refresh``) are added through the store and made due for renewal; the rest of the
stored rows are bulk-inserted (not due, no versions: they only have to be *there*). Each measured
tick claims all the due credentials (``batch = --due``) and renews each one (exchange +
``debug_token`` verification upstream). Between ticks the same credentials are made due again.

Statements are counted with a SQLAlchemy ``before_cursor_execute`` listener on the store's engine
(every statement the tick sends, claim and budgets included) and divided by the renewals done.

The old path is the scheduler as it was (one item after the other), kept behind the private
``Scheduler(..., _batched=False)`` switch for this comparison; see docs/scheduler.md.

    python bench/bench_scheduler.py [--due 1000] [--large 100000] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB = "permatoken_bench_sched"


def fresh_database(admin_url: str) -> str:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DB}"))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{DB}"


class Counter:
    """Counts the statements an engine sends (``before_cursor_execute``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


def add_due(store: Any, sandbox: Any, app: dict[str, Any], n: int) -> list[str]:
    from permatoken._secret import Secret
    from permatoken.models import NewCredential, VersionMeta
    from permatoken.timeutil import from_unix

    store.put_app(app["id"], Secret(app["secret"]))
    names = []
    for i in range(n):
        tok = sandbox._json("POST", "/tokens", json={"kind": "system_user_60d"})
        meta = VersionMeta(
            token_type=tok["type"],
            issued_at=from_unix(tok["issued_at"]),
            expires_at=from_unix(tok["expires_at"]),
            waba_ids=tuple(tok["waba_ids"]),
            is_valid=True,
        )
        name = f"due{i % 50}/c{i:05d}"
        spec = NewCredential(name=name, issuer="meta-system-refresh", app_id=app["id"])
        store.add_credential(spec, Secret(tok["value"]), meta)
        names.append(name)
    return names


def fill(store: Any, url: str, start: int, count: int) -> None:
    """Stored but not due: bulk rows, each with a current version (a value sealed with the
    store's keys and a fingerprint of its own), so that a query over versions would feel the
    fleet too."""
    from permatoken.store.repository import _aad_version
    from permatoken.store.schema import credentials, versions
    from permatoken.timeutil import SystemClock

    now = SystemClock().now()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for lo in range(start, start + count, 5000):
            ids = (
                conn.execute(
                    credentials.insert().returning(credentials.c.id),
                    [
                        {
                            "name": f"t{i % 500}/c{i:06d}",
                            "tenant": f"t{i % 500}",
                            "issuer": "manual",
                            "waba_ids": [],
                            "options": {},
                            "policy": {},
                            "health": "ok",
                            "next_due_at": now + timedelta(days=1 + i % 50),
                            "next_action": "inspect",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in range(lo, min(lo + 5000, start + count))
                    ],
                )
                .scalars()
                .all()
            )
            sealed = {
                cid: store.keyring.seal(b'{"token": "zqFiller"}', _aad_version(cid, 1))
                for cid in ids
            }
            conn.execute(
                versions.insert(),
                [
                    {
                        "credential_id": cid,
                        "version": 1,
                        "state": "current",
                        "ciphertext": sealed[cid].ciphertext,
                        "wrapped_key": sealed[cid].wrapped_key,
                        "kek_id": sealed[cid].kek_id,
                        "fingerprint": f"fp{cid:020d}",
                        "scopes": [],
                        "waba_ids": [],
                        "created_at": now,
                        "state_changed_at": now,
                    }
                    for cid in ids
                ],
            )
    with engine.connect() as conn:
        conn.execute(sa.text("COMMIT"))
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def make_due(store: Any, names: list[str]) -> None:
    from permatoken.store.schema import credentials

    with store.write() as conn:
        conn.execute(
            credentials.update()
            .where(credentials.c.name.in_(names))
            .values(next_due_at=store.clock.now() - timedelta(seconds=1), next_action="renew")
        )


def tick(settings: Any, store: Any, path: str, due: int) -> dict[str, float]:
    from permatoken.meta.graph import GraphClient
    from permatoken.rotation import RenewalEngine
    from permatoken.scheduler import PolicyLayers, Scheduler

    graph = GraphClient(settings.graph_url, settings.graph_version)
    policies = PolicyLayers(settings, store)
    engine = RenewalEngine(
        store,
        graph,
        owner=f"bench-{path}",
        lease_ttl=settings.scheduler_lease_ttl,
        policy_resolver=policies.for_credential,
    )
    if path == "new-c16":
        settings = settings.model_copy(update={"scheduler_obtain_concurrency": 16})
    sched = Scheduler(settings, store, engine, policies=policies, batch=due, _batched=path != "old")
    counter = Counter(store.engine)
    started = time.perf_counter()
    report = sched.tick()
    seconds = time.perf_counter() - started
    sa.event.remove(store.engine, "before_cursor_execute", counter._seen)
    engine.close()
    if report.renewed != due:
        raise SystemExit(f"tick renewed {report.renewed} of {due}: {report}")
    return {
        "seconds": seconds,
        "items_per_s": due / seconds,
        "statements": counter.count,
        "per_renewal": counter.count / due,
    }


def median_seconds(fn: Any, rounds: int = 15) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def lists(store: Any, url: str, home: Path, stored: int) -> dict[str, float]:
    """``status --json`` (complete, streamed), a page of 100 by cursor (first, last) in the store
    and through ``GET /v1/credentials`` of a ``permatoken serve --no-scheduler`` process."""
    import httpx
    from bench_broker_read import free_port, wait_up

    from permatoken.server.keystore import KeyStore
    from permatoken.store.pages import status_page

    env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")} | {
        "PERMATOKEN_HOME": str(home),
        "PERMATOKEN_DATABASE_URL": url,
    }
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "permatoken", "status", "--json"],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    full = time.perf_counter() - t
    assert out.count(b'"name"') == stored, "status --json did not list every credential"
    names = [r.credential.name for r in status_page(store, limit=stored)]
    last = names[-101]  # the last full page of 100 in name order starts after it
    first_page = median_seconds(lambda: status_page(store, limit=100))
    last_page = median_seconds(lambda: status_page(store, after=last, limit=100))
    _, key = KeyStore(store).create("reader", [], actor="bench")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/healthz", proc)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key.reveal()}"}) as c:

            def get(path: str) -> None:
                r = c.get(path)
                r.raise_for_status()
                assert len(r.json()["items"]) == 100

            get("/v1/credentials?limit=100")
            api_first = median_seconds(lambda: get("/v1/credentials?limit=100"))
            api_last = median_seconds(lambda: get(f"/v1/credentials?limit=100&after={last}"))
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "status_json_s": full,
        "page_first_ms": first_page * 1e3,
        "page_last_ms": last_page * 1e3,
        "api_first_ms": api_first * 1e3,
        "api_last_ms": api_last * 1e3,
    }


def explain(url: str, after: str) -> str:
    from permatoken.store.pages import status_page  # noqa: F401  (the query below is its)

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    q = (
        "EXPLAIN SELECT * FROM credentials LEFT JOIN versions cur ON cur.credential_id = "
        "credentials.id AND cur.state = 'current' WHERE credentials.name > :after "
        "ORDER BY credentials.name LIMIT 100"
    )
    fp = (
        "EXPLAIN SELECT 1 FROM versions WHERE fingerprint = :fp "
        "AND state IN ('pending', 'current', 'previous')"
    )
    with engine.connect() as conn:
        plan = "\n".join(r[0] for r in conn.execute(sa.text(q), {"after": after}))
        plan += "\n" + "\n".join(r[0] for r in conn.execute(sa.text(fp), {"fp": "fp1"}))
    engine.dispose()
    return plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--due", type=int, default=1000)
    ap.add_argument("--small", type=int, default=1000, help="credentials stored, small case")
    ap.add_argument("--large", type=int, default=100_000, help="credentials stored, large case")
    ap.add_argument("--latency", type=float, default=0.02, help="seconds added to every Graph call")
    ap.add_argument("--pg-admin-url", default=PG_ADMIN)
    ap.add_argument(
        "--paths",
        default="old,new,new-c16",
        help="old: one by one; new: batched (defaults); new-c16: batched, 16 concurrent exchanges",
    )
    args = ap.parse_args()

    from _live_sandbox import ProcessSandbox
    from conftest import init_store
    from permatoken.settings import load_settings
    from permatoken.store import open_store

    url = fresh_database(args.pg_admin_url)
    home = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    paths = [p for p in args.paths.split(",") if p]
    with ProcessSandbox(app_calls_per_hour=10**9, app_time_budget_seconds=10**9) as sandbox:
        sandbox._json(
            "POST",
            "/faults",
            json={
                "endpoint": "*",
                "kind": "latency",
                "latency_seconds": args.latency,
                "count": None,
                "fraction": 1.0,
            },
        )
        os.environ["PERMATOKEN_HOME"] = str(home)
        settings = load_settings(
            database_url=url,
            graph_url=sandbox.url,
            budget_app_per_hour=10**9,
        )
        init_store(settings)
        store = open_store(settings)
        t = time.perf_counter()
        names = add_due(store, sandbox, sandbox.fixtures["apps"][0], args.due)
        fill(store, url, 0, args.small - args.due)
        print(f"setup: {args.due} due credentials added in {time.perf_counter() - t:.1f}s")
        results: dict[tuple[str, int], dict[str, float]] = {}
        listed: dict[int, dict[str, float]] = {}
        for stored in (args.small, args.large):
            if stored == args.large:
                t = time.perf_counter()
                fill(store, url, args.small, args.large - args.small)
                print(
                    f"setup: {args.large - args.small} more rows in {time.perf_counter() - t:.1f}s"
                )
            for path in paths:
                make_due(store, names)
                r = tick(settings, store, path, args.due)
                results[(path, stored)] = r
                print(
                    f"{path} path, {stored:>7,} stored: {r['items_per_s']:7.1f} items/s "
                    f"({r['seconds']:.2f}s), {r['per_renewal']:.1f} statements/renewal",
                    flush=True,
                )
            listed[stored] = lists(store, url, home, stored)
            print(
                "lists, {:,} stored: status --json {status_json_s:.2f}s, page of 100: store "
                "{page_first_ms:.1f} ms first / {page_last_ms:.1f} ms last, API "
                "{api_first_ms:.1f} ms first (with total) / {api_last_ms:.1f} ms last".format(
                    stored, **listed[stored]
                ),
                flush=True,
            )
        print(explain(url, "t9/c099000"))
        store.close()
    print(f"\nupstream latency {args.latency * 1000:.0f} ms per Graph call, {args.due} due")
    for path in paths:
        small, large = results[(path, args.small)], results[(path, args.large)]
        print(
            f"{path}: {args.large:,} vs {args.small:,} stored: items/s ratio "
            f"{large['items_per_s'] / small['items_per_s']:.2f}, statements/renewal "
            f"{small['per_renewal']:.1f} -> {large['per_renewal']:.1f}"
        )
    small, large = listed[args.small], listed[args.large]
    print(
        f"lists, {args.large:,} vs {args.small:,} stored: status --json x"
        f"{large['status_json_s'] / small['status_json_s']:.1f} (it prints every row), "
        f"per row x{large['status_json_s'] / small['status_json_s'] * args.small / args.large:.2f}; "
        f"page of 100 last x{large['page_last_ms'] / small['page_last_ms']:.2f}, "
        f"API first x{large['api_first_ms'] / small['api_first_ms']:.2f}, "
        f"API last x{large['api_last_ms'] / small['api_last_ms']:.2f}"
    )
    for other in [p for p in paths if p != "old" and "old" in paths]:
        for stored in (args.small, args.large):
            old, new = results[("old", stored)], results[(other, stored)]
            print(
                f"{other}/old at {stored:,} stored: items/s x{new['items_per_s'] / old['items_per_s']:.1f}, "
                f"statements/renewal {old['per_renewal']:.1f} -> {new['per_renewal']:.1f} "
                f"(x{new['per_renewal'] / old['per_renewal']:.2f})"
            )


if __name__ == "__main__":
    main()
