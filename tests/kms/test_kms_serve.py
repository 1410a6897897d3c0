"""The HTTP API on a store under AWS KMS, with KMS going away, and backups under KMS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _moto import MotoServer
from permatoken.service import build_engine
from permatoken.store import open_store
from server.conftest import TEST_CONFIG, LiveBroker, add_manual


@pytest.fixture
def kms_store(
    kms_key: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """The test's store (both databases) with the KMS key as its active KEK."""
    monkeypatch.setenv("PERMATOKEN_KMS_KEY_ID", kms_key)
    settings = request.getfixturevalue("settings")
    assert settings.kms_key_id == kms_key
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def test_api_reads_survive_kms_going_away_for_cached_keys_and_answer_503_otherwise(
    kms_store: Any, settings: Any, moto: MotoServer, kms_key: str, new_token: Any, emitted: Any
) -> None:
    """a value read before KMS stopped is still served; another one gets 503 kms_unavailable
    naming KMS (never a 500, never a token)"""
    seen, unseen = new_token(), new_token()
    emitted.watch(seen, unseen)
    other = open_store(settings)  # sealed by another process: not in the broker's cache
    try:
        add_manual(other, "acme/seen", seen)
        add_manual(other, "acme/unseen", unseen)
    finally:
        other.close()
    engine = build_engine(settings, kms_store)
    try:
        with LiveBroker(settings, kms_store, engine, TEST_CONFIG, record=emitted.add) as lb:
            c = lb.client(lb.key("app", "acme/*"))
            assert c.get("/v1/tokens/acme/seen").json()["token"] == seen
            moto.kill()
            assert c.get("/v1/tokens/acme/seen").json()["token"] == seen
            r = c.get("/v1/tokens/acme/unseen")
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "kms_unavailable" and "AWS KMS" in error["message"]
            assert unseen not in r.text
    finally:
        engine.close()


def test_backups_under_kms(
    kms_store: Any,
    settings: Any,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    moto: MotoServer,
    tmp_path: Path,
    new_token: Any,
    emitted: Any,
) -> None:
    """a plain backup works, verifies and restores elsewhere through KMS (no key file anywhere);
    a passphrase cannot seal a KMS key: refused with a hint, no file written"""
    token = new_token()
    emitted.watch(token)
    add_manual(kms_store, "acme/wa", token)
    out = tmp_path / "b.ptbackup"
    made = cli("backup", "--out", str(out))
    assert made.rc == 0, made.stderr
    assert token.encode() not in out.read_bytes()
    checked = cli("backup", "verify", str(out), "--json")
    assert checked.rc == 0 and checked.json()["ok"] is True, checked.stderr
    passphrase = tmp_path / "pass"
    passphrase.write_text("correct horse battery staple\n")
    passphrase.chmod(0o600)
    sealed = tmp_path / "sealed.ptbackup"
    refused = cli("backup", "--out", str(sealed), "--passphrase-file", str(passphrase))
    assert refused.rc == 6
    assert "never leaves AWS KMS" in refused.stderr and "hint:" in refused.stderr
    assert not sealed.exists()

    target = tmp_path / "target"
    monkeypatch.setenv("PERMATOKEN_HOME", str(target))
    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", f"sqlite:///{target / 'permatoken.db'}")
    restored = cli("restore", str(out))  # another home, no key file: the KMS key opens it
    assert restored.rc == 0, restored.stderr
    assert not (target / "key").exists()
    got = cli("get", "acme/wa", record=False)
    assert got.rc == 0 and got.stdout.strip() == token
