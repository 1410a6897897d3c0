"""No plaintext token anywhere: database files and rows, logs, CLI output and error messages.

Token values here have no recognisable shape (no ``EAA`` prefix), so only exact matching could
hide them: a leak cannot be masked by the shape-based log redaction.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from permatoken._exceptions import AlreadyExistsError, DecryptionError
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings
from permatoken.store import Store


def encodings(value: str) -> dict[str, bytes]:
    """The value as it could end up in a file: raw, hex (PostgreSQL bytea text), base64."""
    raw = value.encode()
    return {"raw": raw, "hex": raw.hex().encode(), "base64": base64.b64encode(raw)}


def _add_through_the_cli(run_cli: Any, cli: Any, tokens: list[str]) -> None:
    """The first token through a real process, the others in-process; then a duplicate add and
    errors raised after a token was read."""
    first, *rest = tokens
    assert run_cli("add", "leak/one", "--never-expires", input=first).rc == 0
    for i, value in enumerate(rest):
        assert cli("add", f"leak/n{i}", "--expires-at", "2030-01-01", input=value + "\n").rc == 0
    dup = run_cli("add", "leak/one", "--never-expires", input=rest[0])
    assert dup.rc == 4 and "already exists" in dup.stderr
    late = [
        cli("add", "leak/bad", "--never-expires", "--issuer", "bogus", input=first),
        cli("add", "leak/bad", "--never-expires", "--waba-id", "1 2", input=first),
        cli("add", "leak/bad", "--never-expires", "--purpose", "x" * 50, input=first),
    ]
    assert all(r.rc == 2 and r.stderr for r in late)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_files_hold_no_plaintext(
    settings: Settings, run_cli: Any, cli: Any, emitted: Any, new_token: Any
) -> None:
    """Neither the database file nor its -wal and -shm files contain a token, in any encoding."""
    tokens = [new_token() for _ in range(3)]
    emitted.watch(*tokens)
    db = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    keep_wal = sqlite3.connect(db)  # while a connection is open, the WAL is not folded away
    try:
        keep_wal.execute("SELECT count(*) FROM versions").fetchall()
        _add_through_the_cli(run_cli, cli, tokens)
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        assert files[1].stat().st_size > 0, "the WAL should hold the recent writes"
        blobs = {f.name: f.read_bytes() for f in files}
    finally:
        keep_wal.close()
    blobs["after checkpoint"] = db.read_bytes()
    for token in tokens:
        for encoding, needle in encodings(token).items():
            found = [name for name, blob in blobs.items() if needle in blob]
            assert not found, f"token ({encoding}) found in {found}"
    # The check can fail: the fingerprint (stored in the clear) is found the same way.
    assert (
        Secret(tokens[0]).fingerprint.encode()
        in blobs["after checkpoint"] + blobs["permatoken.db-wal"]
    )


@pytest.mark.postgres
def test_postgresql_rows_hold_no_plaintext(
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Any,
    cli: Any,
    emitted: Any,
    new_token: Any,
    raw_db: Any,
) -> None:
    """Every row of every table, rendered as text, is free of the token."""
    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", pg_url)
    assert cli("init").rc == 0
    tokens = [new_token() for _ in range(3)]
    emitted.watch(*tokens)
    _add_through_the_cli(run_cli, cli, tokens)
    with raw_db(pg_url) as conn:
        tables = (
            conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            )
            .scalars()
            .all()
        )
        assert {"credentials", "versions", "events"} <= set(tables)
        rows = {
            t: conn.execute(sa.text(f'SELECT t::text FROM "{t}" t')).scalars().all() for t in tables
        }
    dump = "\n".join(f"{t}: {r}" for t, rs in rows.items() for r in rs)
    assert Secret(tokens[0]).fingerprint in dump  # the dump really holds the versions
    for token in tokens:
        for encoding, needle in encodings(token).items():
            assert needle.decode() not in dump, f"token ({encoding}) found in the PostgreSQL rows"


def test_store_operations_log_no_plaintext(
    store: Store, emitted: Any, new_token: Any, raw_db: Any
) -> None:
    """Every logger at DEBUG (SQLAlchemy's SQL, parameters and rows too): no token appears."""
    first, second, third = (new_token() for _ in range(3))
    emitted.watch(first, second, third)
    store.add_credential(NewCredential(name="log/m"), Secret(first), VersionMeta())
    store.put_secret("log/m", "refresh_token", Secret(third))
    pending = store.add_pending("log/m", Secret(second), VersionMeta())
    store.promote("log/m", pending.version)
    assert store.reveal("log/m").reveal() == second
    assert store.get_secret("log/m", "refresh_token").reveal() == third
    with pytest.raises(AlreadyExistsError) as dup:
        store.add_credential(NewCredential(name="log/m"), Secret(third), VersionMeta())
    logging.getLogger("permatoken.test").exception("reporting %s", dup.value)
    with raw_db(store.url) as conn:
        conn.execute(sa.text("UPDATE versions SET ciphertext = wrapped_key WHERE version = 2"))
    with pytest.raises(DecryptionError) as bad:
        store.reveal("log/m")
    logging.getLogger("permatoken.test").error("failed: %r", bad.value)
    sql_logged = [
        s for s in emitted.sources_containing("INSERT INTO versions") if "sqlalchemy" in s
    ]
    assert sql_logged, "SQL logging should have been captured (else this test proves nothing)"
    for exc in (dup.value, bad.value):
        for token in (first, second, third):
            assert token not in str(exc) and token not in repr(exc.to_dict())
