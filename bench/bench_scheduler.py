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


def fill(url: str, start: int, count: int) -> None:
    """Stored but not due: bulk rows without versions."""
    from permatoken.store.schema import credentials
    from permatoken.timeutil import SystemClock

    now = SystemClock().now()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for lo in range(start, start + count, 5000):
            conn.execute(
                credentials.insert(),
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
    from permatoken.scheduler import Scheduler

    graph = GraphClient(settings.graph_url, settings.graph_version)
    engine = RenewalEngine(store, graph, owner=f"bench-{path}")
    if path == "new-c16":
        settings = settings.model_copy(update={"scheduler_obtain_concurrency": 16})
    sched = Scheduler(settings, store, engine, batch=due, _batched=path != "old")
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
        fill(url, 0, args.small - args.due)
        print(f"setup: {args.due} due credentials added in {time.perf_counter() - t:.1f}s")
        results: dict[tuple[str, int], dict[str, float]] = {}
        for stored in (args.small, args.large):
            if stored == args.large:
                t = time.perf_counter()
                fill(url, args.small, args.large - args.small)
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
        store.close()
    print(f"\nupstream latency {args.latency * 1000:.0f} ms per Graph call, {args.due} due")
    for path in paths:
        small, large = results[(path, args.small)], results[(path, args.large)]
        print(
            f"{path}: {args.large:,} vs {args.small:,} stored: items/s ratio "
            f"{large['items_per_s'] / small['items_per_s']:.2f}, statements/renewal "
            f"{small['per_renewal']:.1f} -> {large['per_renewal']:.1f}"
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
