"""restore: from either engine to the other, everything back and still verifiable; refusals
change nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from permatoken.settings import Settings, load_settings
from permatoken.store import engine as store_engine
from permatoken.store import open_store

from ._world import all_rows, current_values, seed_bulk, without_restore_records
from .conftest import file_mode

LATER_MIGRATION = '''"""test-only: a column added after the backup was written

Revision ID: t9001
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "t9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Moves data: rows loaded after this ran (at the newer layout) would miss it.
    op.add_column("credentials", sa.Column("zz_note", sa.Text))
    op.execute("UPDATE credentials SET zz_note = 'carried up'")


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("zz_note")
'''


def _later_migrations(tmp_path: Path, monkeypatch: Any) -> None:
    """This permatoken now knows one migration more than the one that wrote the backup."""
    head = store_engine.head_revision()
    newer = tmp_path / "migrations"
    shutil.copytree(store_engine._MIGRATIONS, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / "t9001_test.py").write_text(LATER_MIGRATION.format(head=head))
    monkeypatch.setattr(store_engine, "_MIGRATIONS", newer)


def _open(url: str, key_file: Path | None) -> Any:
    return open_store(load_settings(database_url=url, key_file=key_file))


def _values(url: str, key_file: Path | None) -> dict[str, str]:
    """Every current token of the store at ``url``, decrypted with ``key_file``'s keys."""
    target = _open(url, key_file)
    try:
        return current_values(target)
    finally:
        target.close()


def _round_trip(
    cli: Any, settings: Settings, target: str, tmp_path: Path, *args: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Back up the test's store, restore it into ``target``; (rows before, rows restored)."""
    before = all_rows(settings.resolved_database_url)
    out = tmp_path / "b.ptbackup"
    made = cli("backup", "--out", str(out), *args)
    assert made.rc == 0, made.stderr
    done = cli("--database-url", target, "restore", str(out), *args)
    assert done.rc == 0, done.stderr
    assert "restored" in done.stdout and "permatoken audit verify" in done.stdout
    return before, all_rows(target)


def test_round_trip_to_the_other_engine(
    settings: Settings,
    store: Any,
    seeded: list[str],
    other_url: str,
    tmp_path: Path,
    cli: Any,
    emitted: Any,
) -> None:
    """Every row of every table arrives unchanged; every value opens; the audit chain verifies;
    the restored store takes new writes (PostgreSQL sequences were moved past the ids)."""
    emitted.watch(*seeded)
    before, after = _round_trip(cli, settings, other_url, tmp_path)
    assert without_restore_records(after) == before
    target = _open(other_url, settings.resolved_key_file)
    try:
        assert current_values(target) == current_values(store)
        assert target.reveal("acme/messaging", 1).reveal() == seeded[1]
        assert target.get_secret("acme/messaging", "refresh_token").reveal() == seeded[3]
        assert target.app_secret("1234567890").reveal() == seeded[0]
    finally:
        target.close()
    audit = cli("--database-url", other_url, "audit", "verify", "--json")
    assert audit.rc == 0 and audit.json()["ok"], audit.output
    assert audit.json()["records"] == len(before["audit_log"]) + 1
    added = cli(
        "--database-url", other_url, "add", "acme/new", "--never-expires", input="zqNewOne1234"
    )
    assert added.rc == 0, added.stderr


@pytest.mark.slow
def test_round_trip_of_10000_credentials(
    settings: Settings,
    store: Any,
    seeded: list[str],
    other_url: str,
    tmp_path: Path,
    run_cli: Any,
) -> None:
    """10,000 credentials (20,000 versions): rows, current values and audit all survive."""
    values = seed_bulk(store, 10_000)
    before = all_rows(settings.resolved_database_url)
    out = tmp_path / "big.ptbackup"
    assert run_cli("backup", "--out", str(out)).rc == 0
    done = run_cli("--database-url", other_url, "restore", str(out), "--json")
    assert done.rc == 0, done.stderr
    assert done.json()["counts"]["credentials"] == 10_001
    after = all_rows(other_url)
    assert without_restore_records(after) == before
    assert len(after["events"]) == len(before["events"]) + 1
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    restored = _values(other_url, settings.resolved_key_file)
    assert len(restored) == 10_001
    assert all(restored[name] == value for name, value in values.items())
    audit = run_cli("--database-url", other_url, "audit", "verify", "--json")
    assert audit.rc == 0 and audit.json()["ok"] and audit.json()["records"] == 10_004


def test_restore_over_data_is_refused_and_changes_nothing(
    settings: Settings, seeded: list[str], other_url: str, tmp_path: Path, cli: Any
) -> None:
    """The store that was backed up, and a store with a single row, are both refused as is."""
    out = tmp_path / "b.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    url = settings.resolved_database_url
    before = all_rows(url)
    refused = cli("restore", str(out))
    assert refused.rc == 14, refused.output
    assert "already holds data" in refused.stderr and "permatoken restore FILE" in refused.stderr
    assert all_rows(url) == before
    assert cli("--database-url", other_url, "init").rc == 0
    assert (
        cli("--database-url", other_url, "policy", "set", "--tenant", "x", "--grace", "1h").rc == 0
    )
    one_row = all_rows(other_url)
    refused = cli("--database-url", other_url, "restore", str(out))
    assert refused.rc == 14 and "tenant_policies" in refused.stderr
    assert all_rows(other_url) == one_row


def _target_untouched(url: str) -> None:
    """Nothing of a failed restore remains: no SQLite file, or no tables on PostgreSQL."""
    if url.startswith("sqlite"):
        assert not Path(url.removeprefix("sqlite:///")).exists()
        return
    import sqlalchemy as sa

    engine = store_engine.create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_tampered_or_truncated_file_is_refused_and_nothing_is_written(
    settings: Settings, seeded: list[str], other_url: str, tmp_path: Path, cli: Any
) -> None:
    out = tmp_path / "b.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    data = out.read_bytes()
    bad = tmp_path / "bad.ptbackup"
    variants = [data[:n] + bytes([data[n] ^ 0x20]) + data[n + 1 :] for n in (20, len(data) // 2)]
    variants += [data[:-1] + bytes([data[-1] ^ 1]), data[: len(data) // 3], data[:-1]]
    for variant in variants:
        bad.write_bytes(variant)
        refused = cli("--database-url", other_url, "restore", str(bad))
        assert refused.rc == 14, refused.output
        assert "hint:" in refused.stderr and "permatoken backup verify" in refused.stderr
        _target_untouched(other_url)


def test_a_backup_from_an_older_schema_is_migrated_on_restore(
    settings: Settings,
    seeded: list[str],
    other_url: str,
    tmp_path: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Written before a migration this permatoken has: loaded at its own revision, then
    upgraded, whether the target is empty or initialised (and empty) at the newer head."""
    import sqlalchemy as sa

    out = tmp_path / "old.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    _later_migrations(tmp_path, monkeypatch)
    assert cli("--database-url", other_url, "init").rc == 0  # empty, at t9001
    done = cli("--database-url", other_url, "restore", str(out))
    assert done.rc == 0, done.stderr
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"  # and a target with no tables at all
    assert cli("--database-url", fresh, "restore", str(out)).rc == 0
    for url in (other_url, fresh):
        engine = store_engine.create_engine(url)
        try:
            assert store_engine.current_revision(engine) == "t9001"
            with engine.connect() as conn:
                notes = conn.execute(sa.text("SELECT DISTINCT zz_note FROM credentials")).all()
            assert notes == [("carried up",)]
        finally:
            engine.dispose()
    assert cli("--database-url", other_url, "audit", "verify").rc == 0
    assert _values(other_url, settings.resolved_key_file)["acme/messaging"] == seeded[2]


def test_a_backup_from_a_newer_schema_is_refused(
    store: Any,
    seeded: list[str],
    other_url: str,
    tmp_path: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as m:
        _later_migrations(tmp_path, m)
        assert cli("init").rc == 0
        out = tmp_path / "new.ptbackup"
        assert cli("backup", "--out", str(out)).rc == 0
    refused = cli("--database-url", other_url, "restore", str(out))
    assert refused.rc == 14
    assert "(t9001) is newer than this permatoken knows" in refused.stderr
    assert "upgrade permatoken" in refused.stderr
    _target_untouched(other_url)


# --- keys and passphrases -----------------------------------------------------------------


def _sqlite_in(home: Path) -> str:
    return f"sqlite:///{home / 'permatoken.db'}"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_passphrase_backup_restores_where_there_is_no_key_file(
    settings: Settings,
    store: Any,
    seeded: list[str],
    passphrase_file: Path,
    sealed_backup: Path,
    target_home: Path,
    tmp_path: Path,
    cli: Any,
    emitted: Any,
) -> None:
    """The backup's keys are written to a new key file (0600) in the target home."""
    emitted.watch(*seeded, passphrase_file.read_text().strip())
    out = sealed_backup
    url = _sqlite_in(target_home)
    done = cli(
        "--home", str(target_home), "--database-url", url,
        "restore", str(out), "--passphrase-file", str(passphrase_file),
    )  # fmt: skip
    assert done.rc == 0, done.stderr
    key_file = target_home / "key"
    assert f"wrote the backup's keys to {key_file}" in done.stdout
    assert file_mode(key_file) == 0o600
    from permatoken.crypto import read_key_file_keys

    assert read_key_file_keys(key_file) == read_key_file_keys(settings.resolved_key_file)
    assert _values(url, key_file) == current_values(store)
    assert cli("--home", str(target_home), "--database-url", url, "audit", "verify").rc == 0


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_wrong_passphrase_fails_cleanly_and_writes_nothing(
    settings: Settings,
    seeded: list[str],
    passphrase_file: Path,
    sealed_backup: Path,
    target_home: Path,
    tmp_path: Path,
    cli: Any,
    emitted: Any,
) -> None:
    out = sealed_backup
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase")
    wrong.chmod(0o600)
    emitted.watch("not the passphrase", passphrase_file.read_text().strip())
    url = _sqlite_in(target_home)
    refused = cli(
        "--home", str(target_home), "--database-url", url,
        "restore", str(out), "--passphrase-file", str(wrong),
    )  # fmt: skip
    assert refused.rc == 14, refused.output
    assert (
        "passphrase does not open" in refused.stderr
        and "permatoken backup verify" in refused.stderr
    )
    assert not target_home.exists()
    no_keys = cli("--home", str(target_home), "--database-url", url, "restore", str(out))
    assert no_keys.rc == 6 and "--passphrase-file" in no_keys.stderr
    assert not target_home.exists() or not any(target_home.iterdir())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_passphrase_files_follow_the_key_file_rule(
    settings: Settings, seeded: list[str], passphrase_file: Path, tmp_path: Path, cli: Any
) -> None:
    out = tmp_path / "b.ptbackup"
    passphrase_file.chmod(0o644)
    refused = cli("backup", "--out", str(out), "--passphrase-file", str(passphrase_file))
    assert refused.rc == 2 and "readable by others" in refused.stderr
    assert f"chmod 600 {passphrase_file}" in refused.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    refused = cli("backup", "--out", str(out), "--passphrase-file", str(empty))
    assert refused.rc == 2 and "is empty" in refused.stderr
    assert not out.exists()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_existing_target_keys_must_hold_the_backup_keys(
    settings: Settings,
    store: Any,
    seeded: list[str],
    passphrase_file: Path,
    sealed_backup: Path,
    target_home: Path,
    tmp_path: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PERMATOKEN_KEY or a key file in the target is used if it matches, and never changed."""
    import base64

    from permatoken.crypto import generate_key, read_key_file_keys, write_key_file

    out = sealed_backup
    url = _sqlite_in(target_home)
    args = ("--home", str(target_home), "--database-url", url, "restore", str(out))
    pp = ("--passphrase-file", str(passphrase_file))
    other_key = target_home / "key"
    write_key_file(other_key, [generate_key()])
    before = other_key.read_bytes()
    refused = cli(*args, *pp)
    assert refused.rc == 6 and "does not hold the key(s) this backup uses" in refused.stderr
    assert other_key.read_bytes() == before and not Path(url[10:]).exists()
    other_key.unlink()
    keys = read_key_file_keys(settings.resolved_key_file)
    monkeypatch.setenv("PERMATOKEN_KEY", base64.b64encode(generate_key()).decode())
    refused = cli(*args, *pp)
    assert refused.rc == 6 and "PERMATOKEN_KEY does not hold" in refused.stderr
    monkeypatch.setenv("PERMATOKEN_KEY", ",".join(base64.b64encode(k).decode() for k in keys))
    done = cli(*args, *pp)
    assert done.rc == 0, done.stderr
    assert not other_key.exists()  # PERMATOKEN_KEY matched: no key file written
    assert _values(url, None) == current_values(store)  # keys from PERMATOKEN_KEY


def test_a_file_changed_after_its_check_is_not_loaded(
    settings: Settings,
    seeded: list[str],
    other_url: str,
    tmp_path: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The MACs are checked again over the bytes the load reads: a file changed between the
    check and the load rolls the whole load back."""
    from permatoken.backup import restore as restore_mod

    out = tmp_path / "b.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    real = restore_mod.verify_backup

    def verify_then_change(path: Path, **kwargs: Any) -> Any:
        verified = real(path, **kwargs)
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x10  # the MAC: everything still decodes, only the MAC can tell
        path.write_bytes(bytes(data))
        return verified

    monkeypatch.setattr(restore_mod, "verify_backup", verify_then_change)
    refused = cli("--database-url", other_url, "restore", str(out))
    assert refused.rc == 14 and "MAC does not match" in refused.stderr
    _target_untouched(other_url)
