"""`permatoken backup --out FILE`, `backup verify FILE`, `backup status`: what they print, what
they write (one 0600 file, never a plaintext token) and what they refuse."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from permatoken.settings import Settings
from permatoken.store.engine import head_revision
from permatoken.store.schema import metadata

from ._world import all_rows, assert_no_plaintext
from .conftest import file_mode

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def test_backup_writes_one_private_file_without_plaintext(
    settings: Settings,
    seeded: list[str],
    passphrase_file: Path,
    tmp_path: Path,
    cli: Any,
    run_cli: Any,
    emitted: Any,
) -> None:
    """Mode 0600 from creation, nothing else left in the directory, no token in the file in
    any encoding (raw, compressed body, decoded values), nor in any output or log."""
    words = passphrase_file.read_text().strip()
    emitted.watch(*seeded, words)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    plain, sealed = out_dir / "plain.ptbackup", out_dir / "sealed.ptbackup"
    made = run_cli("backup", "--out", str(plain))
    assert made.rc == 0, made.stderr
    assert f"backup written to {plain}" in made.stdout and "1 credentials" in made.stdout
    made = cli("backup", "--out", str(sealed), "--passphrase-file", str(passphrase_file), "--json")
    assert made.rc == 0, made.stderr
    data = made.json()
    assert data["passphrase"] is True and data["counts"]["versions"] == 2
    assert sorted(os.listdir(out_dir)) == ["plain.ptbackup", "sealed.ptbackup"]
    assert file_mode(plain) == file_mode(sealed) == 0o600
    assert_no_plaintext([plain, sealed], [*seeded, words])


def test_backup_refuses_to_overwrite_and_needs_out(
    settings: Settings, seeded: list[str], tmp_path: Path, cli: Any
) -> None:
    out = tmp_path / "b.ptbackup"
    out.write_text("precious")
    refused = cli("backup", "--out", str(out))
    assert refused.rc == 14 and "already exists" in refused.stderr
    assert "--force" in refused.stderr and out.read_text() == "precious"
    assert cli("backup", "--out", str(out), "--force").rc == 0
    assert out.read_bytes().startswith(b"PTBACKUP")
    missing = cli("backup", "--out", str(tmp_path / "nope" / "b.ptbackup"))
    assert missing.rc == 14 and "does not exist" in missing.stderr
    assert "mkdir -p" in missing.stderr
    bare = cli("backup")
    assert bare.rc == 2 and "permatoken backup --out FILE" in bare.stderr


def test_verify_reports_counts_keys_revision_and_writes_nothing(
    settings: Settings, store: Any, seeded: list[str], tmp_path: Path, cli: Any, emitted: Any
) -> None:
    emitted.watch(*seeded)
    out = tmp_path / "b.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    before = all_rows(settings.resolved_database_url)
    listing = sorted(os.listdir(tmp_path))
    human = cli("backup", "verify", str(out))
    assert human.rc == 0, human.stderr
    assert f"backup {out}: OK" in human.stdout
    assert store.keyring.active_id in human.stdout and head_revision() in human.stdout
    assert "credentials" in human.stdout and "secrets open" in human.stdout
    as_json = cli("backup", "verify", str(out), "--json")
    assert as_json.rc == 0
    data = as_json.json()
    assert data["ok"] is True and data["schema_revision"] == head_revision()
    assert data["kek_ids"] == [store.keyring.active_id] and data["created_at"].endswith("Z")
    assert set(data["counts"]) == set(metadata.tables) and data["counts"]["versions"] == 2
    assert data["secrets_opened"] == 4  # two versions, a refresh token, an app secret
    assert all_rows(settings.resolved_database_url) == before
    assert sorted(os.listdir(tmp_path)) == listing


@sqlite_only
def test_verify_of_a_changed_file_fails_with_a_reason(
    settings: Settings, seeded: list[str], tmp_path: Path, cli: Any, run_cli: Any
) -> None:
    out = tmp_path / "b.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x04
    out.write_bytes(bytes(data))
    human = run_cli("backup", "verify", str(out))
    assert human.rc == 14
    assert (
        f"backup {out}: FAILED" in human.stderr
        and "reason: the backup's MAC does not match" in human.stderr
    )
    machine = cli("backup", "verify", str(out), "--json")
    assert machine.rc == 14
    report = machine.json()
    assert report["ok"] is False and report["code"] == "backup_tampered" and report["reason"]


@sqlite_only
def test_verify_on_a_machine_without_the_key_needs_the_passphrase(
    settings: Settings,
    seeded: list[str],
    passphrase_file: Path,
    sealed_backup: Path,
    target_home: Path,
    tmp_path: Path,
    cli: Any,
) -> None:
    out = sealed_backup
    elsewhere = ("--home", str(target_home))
    without = cli(*elsewhere, "backup", "verify", str(out))
    assert without.rc == 6 and "--passphrase-file" in without.stderr
    ok = cli(*elsewhere, "backup", "verify", str(out), "--passphrase-file", str(passphrase_file))
    assert ok.rc == 0, ok.stderr
    assert "MAC checked with: passphrase, kek" in ok.stdout
    assert not target_home.exists()
    plain = tmp_path / "plain.ptbackup"
    assert cli("backup", "--out", str(plain)).rc == 0
    wrong = cli(
        *elsewhere, "backup", "verify", str(plain), "--passphrase-file", str(passphrase_file)
    )
    assert wrong.rc == 14 and "without a passphrase" in wrong.stderr


def test_backup_status_and_the_status_line_show_the_last_good_backup(
    settings: Settings, seeded: list[str], tmp_path: Path, cli: Any
) -> None:
    seeded_status = cli("backup", "status", "--json").json()
    assert seeded_status["last_backup"]["path"] == "/x/y.ptbackup"  # the seeded record
    out = tmp_path / "b.ptbackup"
    assert cli("backup", "--out", str(out)).rc == 0
    data = cli("backup", "status", "--json").json()
    assert data["last_backup"]["path"] == str(out) and data["last_backup"]["kind"] == "manual"
    assert 0 <= data["last_backup"]["age_seconds"] < 600 and data["last_failure"] is None
    line = cli("status").stdout
    assert "last backup: " in line and "ago, manual)" in line
    assert isinstance(json.loads(cli("status", "--json").stdout), list)  # unchanged shape
    assert cli("backup", "--out", str(out)).rc == 14  # exists: a failed attempt is logged
    failed = cli("backup", "status", "--json").json()
    assert failed["last_backup"]["path"] == str(out)
    assert "already exists" in failed["last_failure"]["error"]
    assert "FAILED" in cli("backup", "status").stdout


def test_status_says_when_there_was_never_a_backup(settings: Settings, cli: Any) -> None:
    assert cli("add", "acme/x", "--never-expires", input="zqValue123456").rc == 0
    assert "last backup: never" in cli("status").stdout
    assert cli("backup", "status", "--json").json() == {"last_backup": None, "last_failure": None}
