"""Keys from outside: a lost or damaged key file, wrong PERMATOKEN_KEY values, symlinks, and
`init` / `keys rotate` / Ctrl-C over a store full of data. Each: a clear message, the exit code
of docs/cli.md, nothing broken or written."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import init_store, random_token
from permatoken._secret import Secret
from permatoken.crypto import generate_key, kek_id_of, read_key_file_keys
from permatoken.live_keyring import load_live_keyring
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings, load_settings
from permatoken.store import Store, open_store
from permatoken.store import engine as store_engine

KEY_ERROR = 6


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _add(cli: Any, name: str) -> str:
    value = random_token()
    assert cli("add", name, "--never-expires", "--offline", input=value).rc == 0
    return value


def _get(cli: Any, name: str) -> Any:
    return cli("get", name, record=False)


def _files(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


# --- item 18: init never writes a new key over data sealed by the old one -------------------


def test_init_refuses_a_new_key_over_data_sealed_by_a_lost_one(
    settings: Settings, cli: Any, db_rows: Any
) -> None:
    """Key file gone, data still there: `init` names the key and a row, says to restore the
    key file from backup, and writes nothing; restoring the file brings everything back."""
    value = _add(cli, "acme/wa")
    path = settings.resolved_key_file
    saved = path.read_bytes()
    needed = kek_id_of(read_key_file_keys(path)[0])
    path.unlink()
    before = db_rows(settings.resolved_database_url)
    for command in (("get", "acme/wa"), ("init",)):
        r = cli(*command)
        assert r.rc == KEY_ERROR, r.output
        assert "backup" in r.stderr and "PERMATOKEN_KEY" in r.stderr
    assert needed in r.stderr and "'acme/wa' version 1" in r.stderr
    assert "nothing was written" in r.stderr
    assert not path.exists()
    assert db_rows(settings.resolved_database_url) == before
    path.write_bytes(saved)
    path.chmod(0o600)
    assert _get(cli, "acme/wa").stdout == value + "\n"
    assert cli("init").rc == 0  # with the right key, init is the usual no-op


def test_init_refuses_a_wrong_permatoken_key_over_existing_data(
    settings: Settings, cli: Any, db_rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(cli, "acme/wa")
    before = db_rows(settings.resolved_database_url)
    monkeypatch.setenv("PERMATOKEN_KEY", b64(generate_key()))
    r = cli("init")
    assert r.rc == KEY_ERROR and "cannot open data already in the store" in r.stderr
    assert "'acme/wa' version 1" in r.stderr
    assert db_rows(settings.resolved_database_url) == before


def test_init_on_a_database_file_of_nothing_still_creates_a_key(home: Path, cli: Any) -> None:
    """An empty database file (no tables yet) holds nothing to protect: init proceeds."""
    home.mkdir(mode=0o700)
    sqlite3.connect(home / "permatoken.db").close()
    r = cli("init")
    assert r.rc == 0 and "generated" in r.stdout, r.output


# --- damaged key files ------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    line = path.read_text().splitlines()[-1]
    path.write_text(line[:22] + "\n")


def _empty(path: Path) -> None:
    path.write_text("")


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir(mode=0o700)


def _dangling_symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("gone"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, "not valid base64"),
        (_empty, "no key found"),
        (_directory, "not a regular file"),
        (_dangling_symlink, "does not exist"),
    ],
)
def test_a_damaged_key_file_says_restore_it_and_init_keeps_it(
    settings: Settings, cli: Any, damage: Any, message: str, db_rows: Any
) -> None:
    """Every command says what is wrong and to restore the key (exit 6); `init` does not
    "fix" it by writing a new key over the store."""
    _add(cli, "acme/wa")
    path = settings.resolved_key_file
    needed = kek_id_of(read_key_file_keys(path)[0])
    damage(path)
    before = db_rows(settings.resolved_database_url)
    for command in (("get", "acme/wa"), ("status",), ("init",), ("keys", "rotate")):
        r = cli(*command)
        assert r.rc == KEY_ERROR, (command, r.output)
        assert message in r.stderr and "restore" in r.stderr and "backup" in r.stderr
    assert db_rows(settings.resolved_database_url) == before
    assert path.is_symlink() or path.is_dir() or len(path.read_bytes()) < 40
    # The hint's `keys status` works without keys: it lists what the store needs.
    r = cli("keys", "status", "--json")
    assert r.rc == KEY_ERROR and message in r.stderr
    assert [(k["kek_id"], k["loaded"]) for k in json.loads(r.stdout)] == [(needed, False)]


def test_a_key_file_readable_by_others_is_refused_with_the_fix(
    settings: Settings, cli: Any
) -> None:
    _add(cli, "acme/wa")
    path = settings.resolved_key_file
    path.chmod(0o644)
    for command in (("get", "acme/wa"), ("init",)):
        r = cli(*command)
        assert r.rc == KEY_ERROR and "0644" in r.stderr and f"chmod 600 {path}" in r.stderr


def test_a_symlinked_key_file_is_followed_and_rotation_keeps_the_link(
    settings: Settings, cli: Any, tmp_path: Path
) -> None:
    """A key file that is a link (a mounted secret) works; `keys rotate` writes the target."""
    value = _add(cli, "acme/wa")
    path = settings.resolved_key_file
    target = tmp_path / "secrets" / "permatoken-key"
    target.parent.mkdir()
    path.rename(target)
    path.symlink_to(target)
    assert _get(cli, "acme/wa").stdout == value + "\n"
    r = cli("keys", "rotate")
    assert r.rc == 0, r.output
    assert path.is_symlink() and len(read_key_file_keys(target)) == 2
    assert _get(cli, "acme/wa").stdout == value + "\n"


# --- PERMATOKEN_KEY ---------------------------------------------------------------------------


def test_permatoken_key_with_a_malformed_value_names_which(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(cli, "acme/wa")
    (right,) = read_key_file_keys(settings.resolved_key_file)
    monkeypatch.setenv("PERMATOKEN_KEY", f"{b64(right)},not-a-key")
    r = cli("get", "acme/wa")
    assert r.rc == KEY_ERROR and "PERMATOKEN_KEY value 2 of 2" in r.stderr
    assert "not-a-key" not in r.stderr


@pytest.mark.parametrize("order", ["wrong,right", "right,wrong"])
def test_permatoken_key_with_one_unknown_key_still_opens_the_data(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """A key the store does not use beside the right one is a key being introduced: reads
    work either way; new values go under the last one (as `keys rotate` documents)."""
    value = _add(cli, "acme/wa")
    (right,) = read_key_file_keys(settings.resolved_key_file)
    wrong = generate_key()
    keys = {"right": b64(right), "wrong": b64(wrong)}
    monkeypatch.setenv("PERMATOKEN_KEY", ",".join(keys[k] for k in order.split(",")))
    assert _get(cli, "acme/wa").stdout == value + "\n"
    _add(cli, "acme/new")
    last = wrong if order.endswith("wrong") else right
    status = {r["kek_id"]: r for r in json.loads(cli("keys", "status", "--json").stdout)}
    assert status[kek_id_of(last)]["active"] and status[kek_id_of(last)]["data_keys"] >= 1


def test_permatoken_key_wins_over_the_key_file_and_errors_say_so(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both set: the environment wins; when it is the wrong one the error says where the keys
    came from, and nothing is sealed under it."""
    _add(cli, "acme/wa")
    monkeypatch.setenv("PERMATOKEN_KEY", b64(generate_key()))
    r = cli("get", "acme/wa")
    assert r.rc == KEY_ERROR and "PERMATOKEN_KEY, which wins over any key file" in r.stderr
    r = cli("add", "acme/two", "--never-expires", "--offline", input=random_token())
    assert r.rc == KEY_ERROR and "cannot open data already in the store" in r.stderr
    monkeypatch.delenv("PERMATOKEN_KEY")
    assert cli("get", "acme/two").rc == 3  # not found: the refused add wrote nothing


# --- keys rotate over a damaged store, and Ctrl-C ---------------------------------------------


def test_keys_rotate_names_a_row_sealed_under_a_key_nobody_has(
    settings: Settings, store: Store, cli: Any
) -> None:
    """A row sealed under another key (by a permatoken without the write guard) stops
    `keys rotate` before it touches the key file, naming the row."""
    _add(cli, "acme/good")
    engine = store_engine.create_engine(settings.resolved_database_url)
    stray = Store(
        engine,
        load_live_keyring(Secret(b64(generate_key())), settings.resolved_key_file),
        url=settings.resolved_database_url,
    )
    try:
        stray.add_credential(
            NewCredential(name="acme/stray"), Secret(random_token()), VersionMeta()
        )
    finally:
        stray.close()
    keys_before = read_key_file_keys(settings.resolved_key_file)
    r = cli("keys", "rotate")
    assert r.rc == KEY_ERROR and "'acme/stray' version 1" in r.stderr, r.output
    assert read_key_file_keys(settings.resolved_key_file) == keys_before


def test_keys_rotate_names_a_damaged_row(
    settings: Settings, store: Store, cli: Any, raw_db: Any
) -> None:
    """A wrapped data key that fails authentication stops the re-wrap with the row's name."""
    for i in range(3):
        _add(cli, f"acme/c{i}")
    with raw_db(store.url) as conn:
        cid = conn.execute(sa.text("SELECT id FROM credentials WHERE name = 'acme/c2'")).scalar()
        blob = bytearray(
            conn.execute(
                sa.text("SELECT wrapped_key FROM versions WHERE credential_id = :c"), {"c": cid}
            ).scalar_one()
        )
        blob[20] ^= 0x01
        conn.execute(
            sa.text("UPDATE versions SET wrapped_key = :b WHERE credential_id = :c"),
            {"b": bytes(blob), "c": cid},
        )
    r = cli("keys", "rotate")
    assert r.rc == KEY_ERROR and "'acme/c2' version 1" in r.stderr, r.output
    assert "Traceback" not in r.output


def test_ctrl_c_in_the_middle_of_keys_rotate_then_run_again(cli: Any, home: Path) -> None:
    """SIGINT while `keys rotate` waits to re-wrap: exit 130, a message saying to run it again,
    no stray key copy; the second run resumes without adding a third key and all values open.
    (SQLite: the test holds its write lock to stop the rotation half-way.)"""
    settings = load_settings()
    init_store(settings)
    values = {f"acme/c{i}": _add(cli, f"acme/c{i}") for i in range(5)}
    path = settings.resolved_key_file
    lock = sqlite3.connect(settings.resolved_database_url.removeprefix("sqlite:///"))
    lock.execute("BEGIN IMMEDIATE")  # the re-wrap's first batch will wait for this
    env = dict(os.environ) | {"NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "keys", "rotate"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while len(read_key_file_keys(path)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    finally:
        lock.rollback()
        lock.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert b"Traceback" not in err and b"run `permatoken keys rotate` again" in err
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]
    keys = read_key_file_keys(path)
    assert len(keys) == 2
    r = cli("keys", "rotate")
    assert r.rc == 0 and "resuming" in r.stdout, r.output
    assert read_key_file_keys(path) == keys
    store = open_store(settings)
    try:
        assert store.kek_usage() == {kek_id_of(keys[1]): len(values)}
    finally:
        store.close()
    for name, value in values.items():
        assert _get(cli, name).stdout == value + "\n"
