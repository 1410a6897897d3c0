"""A backup is one consistent snapshot, even while rotations write; a backup killed mid-write
leaves nothing at its final path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import random_token
from permatoken._secret import Secret
from permatoken.backup import create_backup, verify_backup
from permatoken.backup.stream import BackupReader
from permatoken.backup.verify import opened, unlock
from permatoken.models import NewCredential, VersionMeta
from permatoken.server.audit import AuditLog, AuditRecord
from permatoken.settings import Settings

from ._world import all_rows, assert_no_plaintext, seed_bulk, without_restore_records
from .conftest import file_mode


def test_a_backup_is_one_snapshot_while_writers_carry_on(
    settings: Settings,
    store: Any,
    seeded: list[str],
    other_url: str,
    tmp_path: Path,
    cli: Any,
) -> None:
    """Writes made while the backup is half-way (a new credential, a promotion, audit records)
    are not in it, and what is in it restores: no version without its credential."""
    url = settings.resolved_database_url
    before = all_rows(url)
    done: list[str] = []

    def write_meanwhile(table: str, rows: int) -> None:
        if table != "credentials" or done:
            return
        done.append(table)
        store.add_credential(NewCredential(name="late/new"), Secret(random_token()), VersionMeta())
        store.add_pending("acme/messaging", Secret(random_token()), VersionMeta())
        store.promote("acme/messaging", 3)
        AuditLog(store).append([AuditRecord(actor="test", action="late", result="ok")])

    out = tmp_path / "b.ptbackup"
    create_backup(store, out, checkpoint=write_meanwhile)
    assert done, "the writes did not happen during the backup"
    assert all_rows(url) != before
    restored = cli("--database-url", other_url, "restore", str(out))
    assert restored.rc == 0, restored.stderr
    assert without_restore_records(all_rows(other_url)) == before


def _currents(path: Path, store: Any) -> tuple[Counter[int], set[int], set[int]]:
    """From a backup: current versions per credential id, credential ids, ids versions use."""
    current: Counter[int] = Counter()
    creds: set[int] = set()
    used: set[int] = set()
    with opened(path) as (f, size, header, head):
        _, keys, _ = unlock(header, keyring=lambda: store.keyring, passphrase=None)
        for name, cols, rows in BackupReader(f, size, header, head, keys).records():
            names = [c for c, _ in cols]
            for row in rows:
                r = dict(zip(names, row, strict=True))
                if name == "credentials":
                    creds.add(r["id"])
                elif name == "versions":
                    used.add(r["credential_id"])
                    current[r["credential_id"]] += r["state"] == "current"
    return current, creds, used


def test_backups_taken_while_the_engine_rotates_are_consistent(
    settings: Settings, store: Any, tmp_path: Path
) -> None:
    """Three threads rotate through the renewal engine while backups are taken: in each
    backup every version decrypts and no credential has two current versions."""
    from permatoken.service import build_engine

    names = [f"spin/c{i}" for i in range(3)]
    for name in names:
        store.add_credential(NewCredential(name=name), Secret(random_token()), VersionMeta())
    seed_bulk(store, 200)
    engine = build_engine(settings, store)
    stop = threading.Event()
    rotations: Counter[str] = Counter()
    errors: list[BaseException] = []

    def spin(name: str) -> None:
        try:
            while not stop.is_set():
                outcome = engine.rotate(name, value=Secret(random_token()), force=True)
                assert outcome.status == "rotated", outcome
                rotations[name] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=spin, args=(n,)) for n in names]
    for t in threads:
        t.start()
    try:
        for i in range(4):
            out = tmp_path / f"b{i}.ptbackup"
            create_backup(store, out)
            verified = verify_backup(out, keyring=lambda: store.keyring)
            assert verified.secrets_opened >= 2 * 200 + 3
            current, creds, used = _currents(out, store)
            assert max(current.values()) == 1
            assert used <= creds
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        engine.close()
    assert not errors, errors
    assert all(rotations[n] >= 1 for n in names), rotations


def test_a_backup_killed_mid_write_leaves_no_file_at_the_final_path(
    settings: Settings, store: Any, seeded: list[str], tmp_path: Path, cli: Any
) -> None:
    """SIGKILL while writing (paused by the test hook after 4,000 rows, in the versions): no final file; the
    temporary file is private and holds no plaintext; the next backup cleans it up."""
    values = seed_bulk(store, 1000)
    out = tmp_path / "b.ptbackup"
    gate = tmp_path / "gate"
    env = dict(os.environ) | {"_PERMATOKEN_TEST_BACKUP_PAUSE": f"4000:{gate}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "backup", "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        reached = Path(f"{gate}.reached")
        while not reached.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the backup never reached its pause"
            time.sleep(0.05)
        assert reached.read_text() == "versions"  # mid-file, past the first flushes
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert not out.exists()
    temp = tmp_path / f".b.ptbackup.{proc.pid}.tmp"
    assert temp.exists() and temp.stat().st_size > 0
    assert file_mode(temp) == 0o600
    assert_no_plaintext([temp], [*seeded, *values.values()])
    again = cli("backup", "--out", str(out))
    assert again.rc == 0, again.stderr
    assert not temp.exists()
    assert cli("backup", "verify", str(out)).rc == 0
