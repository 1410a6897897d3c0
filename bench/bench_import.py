"""Bulk import vs adding the same credentials one at a time, in one run on the same machine.

Both sides store N never-expiring tokens offline into a fresh SQLite store (and PostgreSQL if
reachable): the baseline calls ``Store.add_credential`` per token (what ``permatoken add
--offline`` does, minus the process start), the import runs ``Importer`` over a CSV file (parse,
judge, batches of 500 in three multi-row statements). Prints seconds, rows/s and the ratio.

    python bench/bench_import.py [--rows 5000] [--pg-url postgresql+psycopg://…/test]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def fresh(home: Path, url: str | None) -> tuple[object, object, object]:
    from permatoken.crypto import generate_key, write_key_file
    from permatoken.service import build_engine
    from permatoken.settings import load_settings
    from permatoken.store import engine as store_engine
    from permatoken.store import open_store

    home.mkdir(parents=True)
    settings = load_settings(home=home, database_url=url)
    write_key_file(settings.resolved_key_file, [generate_key()])
    eng = store_engine.create_engine(settings.resolved_database_url)
    store_engine.upgrade(eng)
    eng.dispose()
    store = open_store(settings)
    return settings, store, build_engine(settings, store)


def baseline(home: Path, n: int, url: str | None) -> float:
    from permatoken._secret import Secret
    from permatoken.models import NewCredential, VersionMeta

    _, store, engine = fresh(home, url)
    started = time.perf_counter()
    for i in range(n):
        store.add_credential(  # type: ignore[attr-defined]
            NewCredential(name=f"t{i % 100}/c{i:06d}"),
            Secret(f"EAAbench{i:06d}{'b' * 40}"),
            VersionMeta(expires_at=None),
        )
    took = time.perf_counter() - started
    engine.close()  # type: ignore[attr-defined]
    store.close()  # type: ignore[attr-defined]
    return took


def bulk(home: Path, n: int, url: str | None, csv_file: Path) -> float:
    from permatoken.providers.importing import Importer, read_rows

    settings, store, engine = fresh(home, url)
    started = time.perf_counter()
    report = Importer(settings, store, engine, offline=True, dry_run=False).run(  # type: ignore[arg-type]
        read_rows(csv_file)
    )
    took = time.perf_counter() - started
    assert report.count("created") == n, report.to_json()["refused"]
    engine.close()  # type: ignore[attr-defined]
    store.close()  # type: ignore[attr-defined]
    return took


def pg_database(admin_url: str, name: str) -> str | None:
    try:
        eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        eng.dispose()
    except Exception as exc:
        print(f"PostgreSQL not reachable ({type(exc).__name__}): SQLite only")
        return None
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args()
    n = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_file = root / "tokens.csv"
        lines = ["name,token,expires_at"]
        lines += [f"t{i % 100}/c{i:06d},EAAbench{i:06d}{'b' * 40},never" for i in range(n)]
        csv_file.write_text("\n".join(lines) + "\n")
        os.chmod(csv_file, 0o600)
        runs: list[tuple[str, str | None, str | None]] = [("sqlite", None, None)]
        one_db = pg_database(args.pg_url, "bench_import_one")
        bulk_db = pg_database(args.pg_url, "bench_import_bulk") if one_db else None
        if one_db and bulk_db:
            runs.append(("postgresql", one_db, bulk_db))
        print(f"{n:,} credentials, offline, one run")
        print(f"{'engine':12} {'one at a time':>16} {'import':>16} {'ratio':>8}")
        for label, *urls in runs:
            one = baseline(root / f"{label}-one", n, urls[0])
            many = bulk(root / f"{label}-bulk", n, urls[1], csv_file)
            print(
                f"{label:12} {one:8.1f} s {n / one:5.0f}/s {many:8.1f} s {n / many:5.0f}/s "
                f"{one / many:7.1f}x"
            )


if __name__ == "__main__":
    main()
