"""AWS KMS as the key-encryption key, against a real moto server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _moto import MotoServer, boto
from conftest import connect
from permatoken._exceptions import DecryptionError, KmsUnavailableError
from permatoken.kms import DataKeyCache, KmsKek
from permatoken.settings import load_settings
from permatoken.store import open_store

ALIAS = "alias/permatoken"


def kek_ids(url: str) -> set[str]:
    with connect(url) as conn:
        return {r[0] for r in conn.exec_driver_sql("SELECT kek_id FROM versions")}


def files_under(path: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.fixture
def kms_home(kms_key: str, monkeypatch: pytest.MonkeyPatch, cli: Any, home: Path) -> str:
    """An initialised store whose KEK is the KMS key (named by its alias)."""
    monkeypatch.setenv("PERMATOKEN_KMS_KEY_ID", ALIAS)
    made = cli("init")
    assert made.rc == 0, made.stderr
    assert f"key: AWS KMS key {kms_key} (no key file)" in made.stdout
    return kms_key


def add(cli: Any, name: str, token: str) -> None:
    added = cli("add", name, "--never-expires", input=token)
    assert added.rc == 0, added.stderr


def test_a_store_under_kms_has_no_key_file_and_no_plaintext_on_disk(
    kms_home: str, cli: Any, home: Path, new_token: Any, emitted: Any
) -> None:
    """init writes no key file; tokens are sealed under kms:{ARN}; no token byte on disk"""
    tokens = {f"acme/n{i}": new_token() for i in range(3)}
    emitted.watch(*tokens.values())
    for name, token in tokens.items():
        add(cli, name, token)
    assert not (home / "key").exists()
    assert all(p.name.startswith("permatoken.db") for p in home.iterdir())  # db, -wal, -shm
    settings = load_settings()
    assert kek_ids(settings.resolved_database_url) == {f"kms:{kms_home}"}
    for name, token in tokens.items():
        got = cli("get", name, record=False)
        assert got.rc == 0 and got.stdout.strip() == token
    for path, data in files_under(home).items():
        assert all(t.encode() not in data for t in tokens.values()), path
    status = cli("keys", "status", "--json").json()
    assert status == [{"kek_id": f"kms:{kms_home}", "loaded": True, "active": True, "data_keys": 3}]


def test_data_keys_are_bound_to_the_encryption_context(kms_home: str, cli: Any) -> None:
    """a wrapped data key does not decrypt without permatoken's encryption context"""
    from botocore.exceptions import ClientError

    add(cli, "acme/x", "zqContextValue123")
    with connect(load_settings().resolved_database_url) as conn:
        wrapped = conn.exec_driver_sql("SELECT wrapped_key FROM versions").scalar_one()
    with pytest.raises(ClientError) as info:
        boto("kms").decrypt(CiphertextBlob=bytes(wrapped))
    assert info.value.response["Error"]["Code"] == "InvalidCiphertextException"
    kek = KmsKek(kms_home)
    assert len(kek.unwrap(f"kms:{kms_home}", bytes(wrapped))) == 32
    other = {"permatoken": "data-key/v1", "kek_id": "kms:another"}
    with pytest.raises(ClientError) as info:
        boto("kms").decrypt(CiphertextBlob=bytes(wrapped), EncryptionContext=other)
    assert info.value.response["Error"]["Code"] == "InvalidCiphertextException"
    with pytest.raises(DecryptionError):  # damaged: KMS refuses, permatoken says so
        KmsKek(kms_home).unwrap(f"kms:{kms_home}", bytes(wrapped)[:-1] + b"\x00")


def test_move_from_a_key_file_to_kms_and_back(
    kms_key: str,
    cli: Any,
    home: Path,
    new_token: Any,
    monkeypatch: pytest.MonkeyPatch,
    emitted: Any,
    moto: MotoServer,
) -> None:
    """keys rotate moves every data key to KMS (the key file is then unused), and back to a new
    key file when the setting is gone; values read the same at every step"""
    assert cli("init").rc == 0
    key_file = home / "key"
    tokens = {f"acme/n{i}": new_token() for i in range(4)}
    emitted.watch(*tokens.values())
    for name, token in tokens.items():
        add(cli, name, token)
    url = load_settings().resolved_database_url

    def values_ok() -> bool:
        return all(cli("get", n, record=False).stdout.strip() == t for n, t in tokens.items())

    monkeypatch.setenv("PERMATOKEN_KMS_KEY_ID", kms_key)
    moved = cli("keys", "rotate")
    assert moved.rc == 0, moved.stderr
    assert f"re-wrapped 4 data keys under kms:{kms_key}" in moved.stdout
    assert kek_ids(url) == {f"kms:{kms_key}"} and values_ok()
    again = cli("keys", "rotate")  # nothing left to move: resumable and idempotent
    assert again.rc == 0 and "re-wrapped 0 data keys" in again.stdout
    key_file.rename(home / "old.key")  # the key file is not needed any more
    assert values_ok()
    tokens["acme/later"] = new_token()  # sealed under KMS, with no key file around
    emitted.watch(tokens["acme/later"])
    add(cli, "acme/later", tokens["acme/later"])

    monkeypatch.delenv("PERMATOKEN_KMS_KEY_ID")
    back = cli("keys", "rotate")
    assert back.rc == 0, back.stderr
    assert f"generated {key_file}" in back.stdout and "re-wrapped 5 data keys" in back.stdout
    assert key_file.exists() and all(not k.startswith("kms:") for k in kek_ids(url))
    moto.kill()  # KMS gone: a store back on its key file does not need it
    assert values_ok()


def test_kms_down_cached_reads_serve_and_others_fail_clearly(
    kms_home: str, cli: Any, new_token: Any, moto: MotoServer, emitted: Any
) -> None:
    """with KMS stopped, a process serves the values it unwrapped recently; any other read and
    every new process fail with an error naming AWS KMS, exit 6"""
    read, unread = new_token(), new_token()
    emitted.watch(read, unread)
    add(cli, "acme/read", read)
    add(cli, "acme/unread", unread)
    store = open_store(load_settings())
    try:
        assert store.reveal("acme/read").reveal() == read  # unwraps through KMS, cached
        moto.kill()
        assert store.reveal("acme/read").reveal() == read
        with pytest.raises(KmsUnavailableError) as info:
            store.reveal("acme/unread")
        assert "AWS KMS" in info.value.message and kms_home in info.value.message
        assert "kms_cache_seconds" in (info.value.hint or "")
    finally:
        store.close()
    fresh = cli("get", "acme/read", record=False)
    assert fresh.rc == 6
    assert "error: AWS KMS" in fresh.stderr and "hint:" in fresh.stderr
    assert read not in fresh.output


def test_the_data_key_cache_is_bounded_in_time_and_size() -> None:
    """an entry lives ttl seconds from KMS's answer (use does not extend it); LRU beyond size"""
    now = [0.0]
    cache = DataKeyCache(300, size=2, now=lambda: now[0])
    cache.put(b"a", b"A")
    now[0] = 299.0
    assert cache.get(b"a") == b"A"
    now[0] = 300.0
    assert cache.get(b"a") is None
    cache.put(b"b", b"B")
    cache.put(b"c", b"C")
    assert cache.get(b"b") == b"B"  # b is now the most recent
    cache.put(b"d", b"D")
    assert cache.get(b"c") is None and cache.get(b"b") == b"B" and cache.get(b"d") == b"D"
    off = DataKeyCache(0)
    off.put(b"x", b"X")
    assert off.get(b"x") is None


def test_a_missing_kms_key_is_refused_at_init(
    moto: MotoServer, cli: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """an alias that does not exist: init names KMS and writes nothing"""
    monkeypatch.setenv("PERMATOKEN_KMS_KEY_ID", "alias/nope")
    refused = cli("init")
    assert refused.rc == 6
    assert "AWS KMS" in refused.stderr and "alias/nope" in refused.stderr
    assert not home.exists() or list(home.iterdir()) == []


def test_commands_with_kms_down_name_kms_and_never_crash(
    kms_home: str, cli: Any, run_cli: Any, moto: MotoServer, emitted: Any
) -> None:
    """KMS stopped: serve refuses to start (exit 6, naming KMS), keys status and doctor say what
    is wrong; no traceback anywhere"""
    token = "zqKmsDownValue12345"
    emitted.watch(token)
    add(cli, "acme/x", token)
    moto.kill()
    serve = run_cli("serve", "--no-api", timeout=120)
    assert serve.rc == 6 and "AWS KMS" in serve.stderr and "hint:" in serve.stderr
    status = cli("keys", "status", "--json")
    assert status.rc == 6 and "AWS KMS" in status.stderr
    doctor = cli("doctor")
    assert doctor.rc != 0 and "AWS KMS" in doctor.output
