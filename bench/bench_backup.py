"""Backup and restore of 10,000 credentials, side by side with the databases' own tools.

Seeds a SQLite store (10,000 credentials as bench_broker_read.py does, plus an event and an
audit record per credential), then times, on the same data in the same run:

- SQLite: ``permatoken`` backup and restore vs Python's ``sqlite3.Connection.backup`` (a page
  copy, there and back);
- PostgreSQL (the data restored into it first): ``permatoken`` backup and restore vs
  ``pg_dump`` (plain SQL) and ``psql -f`` into an empty database.

The baselines copy bytes or SQL; permatoken also checks MACs and opens every sealed value before
a restore, and its file moves between engines. Prints seconds and ratios (permatoken / baseline).

    python bench/bench_backup.py [--credentials 10000] [--pg-url postgresql+psycopg://…/postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def seed(home: Path, n: int) -> tuple[Any, Any]:
    """The broker benchmark's store: ``n`` credentials (sealed with the store's keyring), an API
    key and its audit record; then one event and one audit record per credential as well."""
    from bench_broker_read import seed as seed_credentials

    from permatoken.server.audit import AuditLog, AuditRecord
    from permatoken.settings import load_settings
    from permatoken.store import open_store
    from permatoken.store.schema import credentials, events

    seed_credentials(home, n)
    settings = load_settings(home=home)
    store = open_store(settings)
    now = datetime.now(UTC)
    with store.write() as conn:
        names = list(conn.execute(sa.select(credentials.c.id, credentials.c.name)))
        rows = [
            {
                "credential_id": i,
                "credential_name": name,
                "kind": "credential.created",
                "at": now,
                "actor": "bench",
                "detail": {"version": 1},
            }
            for i, name in names
        ]
        for lo in range(0, len(rows), 5000):
            conn.execute(events.insert(), rows[lo : lo + 5000])
        AuditLog(store).append_in(
            conn,
            [
                AuditRecord(actor="bench", action="credential.created", result="ok", target=name)
                for _, name in names
            ],
        )
    return settings, store


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_database(admin: str, name: str, *, drop: bool = False) -> str:
    import psycopg

    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')
    return sa.make_url(admin).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=int, default=10_000)
    parser.add_argument("--pg-url", default=os.environ.get("PERMATOKEN_TEST_PG_URL", PG_DEFAULT))
    args = parser.parse_args()

    from permatoken.backup import create_backup, restore_backup, verify_backup
    from permatoken.settings import load_settings

    rows: list[tuple[str, float, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        work = Path(tmp)
        t, (settings, store) = timed(lambda: seed(work / "home", args.credentials))
        print(f"seeded {args.credentials:,} credentials in {t:.1f} s", flush=True)
        key_file = settings.resolved_key_file
        sqlite_db = settings.home / "permatoken.db"

        out = work / "sqlite.ptbackup"
        t_backup, result = timed(lambda: create_backup(store, out))
        t_verify, _ = timed(lambda: verify_backup(out, keyring=lambda: store.keyring))
        total_rows = sum(result.counts.values())

        def sqlite_copy(src: Path, dst: Path) -> None:
            a, b = sqlite3.connect(src), sqlite3.connect(dst)
            try:
                a.backup(b)
            finally:
                a.close()
                b.close()

        t_copy, _ = timed(lambda: sqlite_copy(sqlite_db, work / "copy.db"))
        rows.append(("SQLite backup", t_backup, "sqlite3 .backup", t_copy))
        target = load_settings(
            home=work / "t1", database_url=f"sqlite:///{work / 't1.db'}", key_file=key_file
        )
        t_restore, _ = timed(lambda: restore_backup(target, out))
        t_back, _ = timed(lambda: sqlite_copy(work / "copy.db", work / "copy-back.db"))
        rows.append(("SQLite restore", t_restore, "sqlite3 .backup back", t_back))
        store.close()

        pg_note = ""
        if shutil.which("pg_dump") and shutil.which("psql"):
            try:
                src_url = pg_database(args.pg_url, "bench_backup_src")
            except Exception as exc:  # no PostgreSQL here: report SQLite only
                pg_note = f"PostgreSQL skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            else:
                pg = load_settings(home=work / "pg", database_url=src_url, key_file=key_file)
                restore_backup(pg, out)
                from permatoken.store import open_store

                pg_store = open_store(pg)
                out_pg = work / "pg.ptbackup"
                t_pg_backup, _ = timed(lambda: create_backup(pg_store, out_pg))
                pg_store.close()
                dump = work / "dump.sql"
                t_dump, _ = timed(
                    lambda: subprocess.run(
                        ["pg_dump", "--no-owner", "-f", str(dump), libpq(src_url)], check=True
                    )
                )
                rows.append(("PostgreSQL backup", t_pg_backup, "pg_dump", t_dump))
                dst_url = pg_database(args.pg_url, "bench_backup_dst")
                dst = load_settings(home=work / "pg2", database_url=dst_url, key_file=key_file)
                t_pg_restore, _ = timed(lambda: restore_backup(dst, out_pg))
                psql_url = pg_database(args.pg_url, "bench_backup_psql")
                t_psql, _ = timed(
                    lambda: subprocess.run(
                        ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(dump), libpq(psql_url)],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                )
                rows.append(("PostgreSQL restore", t_pg_restore, "psql -f dump.sql", t_psql))
                for name in ("bench_backup_src", "bench_backup_dst", "bench_backup_psql"):
                    pg_database(args.pg_url, name, drop=True)
        else:
            pg_note = "PostgreSQL skipped: pg_dump/psql not found"

    per = 10_000 / args.credentials
    print(
        f"\n{args.credentials:,} credentials, {total_rows:,} rows, backup file "
        f"{result.size / 1e6:.1f} MB (verify alone: {t_verify:.2f} s)"
    )
    print(f"{'':20} {'permatoken':>12} {'baseline':>12}  {'':22} {'ratio':>7}  per 10,000")
    for label, ours, base_label, base in rows:
        print(
            f"{label:20} {ours:>10.2f} s {base:>10.2f} s  {base_label:22} "
            f"{ours / base:>6.1f}x  {ours * per:.2f} s"
        )
    if pg_note:
        print(pg_note)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
