"""The credential store on SQLite and PostgreSQL: round trips, versions, binding, keys."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from permatoken._exceptions import (
    AlreadyExistsError,
    ConflictError,
    CryptoError,
    DecryptionError,
    InputError,
    InvalidNameError,
    KeyFileError,
    NotFoundError,
)
from permatoken._secret import Secret
from permatoken.crypto import generate_key, kek_id_of, read_key_file_keys, write_key_file
from permatoken.models import Health, NewCredential, VersionMeta, VersionState
from permatoken.settings import Settings
from permatoken.store import Store, open_store

EXPIRY = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


def add(store: Store, name: str, value: str, **meta: Any) -> None:
    meta.setdefault("expires_at", EXPIRY)
    store.add_credential(NewCredential(name=name), Secret(value), VersionMeta(**meta))


def test_round_trip(store: Store, new_token: Callable[[], str]) -> None:
    """A token added is revealed unchanged, with its metadata, on both databases."""
    value = new_token()
    status = store.add_credential(
        NewCredential(
            name="acme/messaging",
            purpose="messaging",
            business_id="123",
            waba_ids=("456", "789"),
            app_id="42",
        ),
        Secret(value),
        VersionMeta(
            token_type="SYSTEM_USER", expires_at=EXPIRY, scopes=("whatsapp_business_messaging",)
        ),
    )
    assert status.current is not None and status.current.version == 1
    assert store.reveal("acme/messaging") == Secret(value)
    assert store.reveal("acme/messaging", 1).reveal() == value
    cred = store.get("acme/messaging")
    assert (cred.tenant, cred.purpose, cred.waba_ids, cred.app_id) == (
        "acme",
        "messaging",
        ("456", "789"),
        "42",
    )
    assert cred.current_version == 1
    v = store.version("acme/messaging")
    assert v.meta.expires_at == EXPIRY and v.meta.expires_at.tzinfo is not None
    assert v.meta.token_type == "SYSTEM_USER" and v.meta.scopes == ("whatsapp_business_messaging",)
    assert v.fingerprint == Secret(value).fingerprint
    assert v.state is VersionState.CURRENT


def test_round_trip_of_a_never_expiring_token_and_8_kib_value(store: Store) -> None:
    value = "E" * 8192
    store.add_credential(NewCredential(name="big"), Secret(value), VersionMeta(expires_at=None))
    assert store.reveal("big").reveal() == value
    assert store.version("big").meta.expires_at is None


def test_times_in_other_zones_keep_their_instant(store: Store) -> None:
    """An aware non-UTC expiry is stored as the same instant (SQLite has no time zones)."""
    local = datetime(2030, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    add(store, "tz/x", "zqTimezoneToken123", expires_at=local)
    got = store.version("tz/x").meta.expires_at
    assert got == local
    assert got is not None and got.utcoffset() == timedelta(0)
    store.update_credential("tz/x", next_due_at=local)
    assert store.get("tz/x").next_due_at == local


def test_versions_pending_promote_previous(store: Store) -> None:
    """add_pending → promote: the new version is current, the old one previous, values intact."""
    add(store, "acme/m", "zqValueOne111")
    pending = store.add_pending("acme/m", Secret("zqValueTwo222"), VersionMeta(expires_at=EXPIRY))
    assert (pending.version, pending.state) == (2, VersionState.PENDING)
    assert store.reveal("acme/m").reveal() == "zqValueOne111"  # current is still v1
    store.promote("acme/m", 2)
    states = {v.version: v.state for v in store.versions("acme/m")}
    assert states == {1: VersionState.PREVIOUS, 2: VersionState.CURRENT}
    assert store.reveal("acme/m").reveal() == "zqValueTwo222"
    assert store.reveal("acme/m", 1).reveal() == "zqValueOne111"
    assert store.get("acme/m").current_version == 2
    assert store.promote("acme/m", 2).state is VersionState.CURRENT  # idempotent
    kinds = [e.kind for e in store.events("acme/m")]
    assert kinds[:2] == ["version.promoted", "version.pending"]


def test_only_one_pending_and_only_pending_can_be_promoted(store: Store) -> None:
    add(store, "acme/m", "zqValueOne111")
    store.add_pending("acme/m", Secret("zqValueTwo222"), VersionMeta())
    with pytest.raises(ConflictError):
        store.add_pending("acme/m", Secret("zqValueThree33"), VersionMeta())
    store.promote("acme/m", 2)
    with pytest.raises(ConflictError, match="only a pending version"):
        store.promote("acme/m", 1)
    with pytest.raises(NotFoundError):
        store.promote("acme/m", 99)
    store.set_version_state("acme/m", 1, VersionState.RETIRED, reason="test")
    assert store.version("acme/m", 1).state is VersionState.RETIRED
    with pytest.raises(InputError):
        store.set_version_state("acme/m", 1, VersionState.CURRENT)
    assert [v.version for v in store.versions("acme/m")] == [1, 2]


def test_database_refuses_a_second_current_version(store: Store, raw_db: Any) -> None:
    """The partial unique index refuses two current versions even when the code is bypassed."""
    add(store, "acme/m", "zqValueOne111")
    store.add_pending("acme/m", Secret("zqValueTwo222"), VersionMeta())
    with raw_db(store.url) as conn, pytest.raises(IntegrityError):
        conn.execute(sa.text("UPDATE versions SET state = 'current' WHERE version = 2"))
    with raw_db(store.url) as conn, pytest.raises(IntegrityError):
        conn.execute(
            sa.text(
                "INSERT INTO versions (credential_id, version, state, ciphertext, wrapped_key, "
                "kek_id, fingerprint, scopes, waba_ids, created_at, state_changed_at) "
                "SELECT credential_id, 3, 'current', ciphertext, wrapped_key, kek_id, fingerprint, "
                "scopes, waba_ids, created_at, state_changed_at FROM versions WHERE version = 1"
            )
        )
    with raw_db(store.url) as conn, pytest.raises(IntegrityError):
        conn.execute(sa.text("UPDATE versions SET state = 'bogus' WHERE version = 2"))
    with raw_db(store.url) as conn:
        currents = conn.execute(
            sa.text("SELECT count(*) FROM versions WHERE state = 'current'")
        ).scalar()
    assert currents == 1


def test_duplicate_add_is_already_exists(store: Store, db_rows: Any) -> None:
    """A second add of the same name is AlreadyExistsError and leaves the first untouched."""
    add(store, "acme/m", "zqValueOne111")
    before = db_rows(store.url)
    with pytest.raises(AlreadyExistsError) as info:
        add(store, "acme/m", "zqValueOther22")
    assert info.value.name == "acme/m"  # type: ignore[attr-defined]
    assert "zqValueOther22" not in str(info.value)
    assert db_rows(store.url) == before
    assert store.reveal("acme/m").reveal() == "zqValueOne111"


def test_unknown_and_invalid_names(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no credential named 'nope/x'"):
        store.get("nope/x")
    with pytest.raises(NotFoundError):
        store.reveal("nope/x")
    with pytest.raises(NotFoundError):
        store.remove("nope/x")
    with pytest.raises(InvalidNameError):
        store.get("Bad Name")
    with pytest.raises(InvalidNameError):
        add(store, "a';drop table credentials;--", "zqValueOne111")


def test_metadata_ids_are_validated(store: Store) -> None:
    with pytest.raises(InputError, match="WABA id"):
        store.add_credential(
            NewCredential(name="a/b", waba_ids=("1; drop",)), Secret("zqValue12345"), VersionMeta()
        )
    with pytest.raises(InputError, match="issuer"):
        store.add_credential(
            NewCredential(name="a/b", issuer="magic"), Secret("zqValue12345"), VersionMeta()
        )
    assert store.list_status() == []


def test_remove_deletes_versions_and_secrets(store: Store, raw_db: Any) -> None:
    add(store, "acme/m", "zqValueOne111")
    store.put_secret("acme/m", "refresh_token", Secret("zqRefresh12345"))
    store.add_pending("acme/m", Secret("zqValueTwo222"), VersionMeta())
    store.remove("acme/m")
    with raw_db(store.url) as conn:
        for table in ("credentials", "versions", "credential_secrets"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
    assert store.events("acme/m")[0].kind == "credential.removed"


def test_list_status_and_health_filter(store: Store) -> None:
    add(store, "b/two", "zqValueTwo222")
    add(store, "a/one", "zqValueOne111")
    add(store, "c/three", "zqValueThree33")
    store.update_credential("c/three", health=Health.FAILING, health_reason="190")
    rows = store.list_status()
    assert [r.credential.name for r in rows] == ["a/one", "b/two", "c/three"]
    assert all(r.current is not None and r.current.version == 1 for r in rows)
    assert [r.credential.name for r in store.list_status(tenant="b")] == ["b/two"]
    assert [r.credential.name for r in store.list_status(health="failing")] == ["c/three"]
    with pytest.raises(InputError):
        store.update_credential("a/one", tenant="renamed")


def test_credential_and_app_secrets_round_trip(store: Store) -> None:
    add(store, "acme/m", "zqValueOne111")
    store.put_secret("acme/m", "refresh_token", Secret("zqRefresh12345"))
    store.put_secret("acme/m", "refresh_token", Secret("zqRefresh67890"))
    assert store.get_secret("acme/m", "refresh_token").reveal() == "zqRefresh67890"
    with pytest.raises(NotFoundError):
        store.get_secret("acme/m", "password")
    store.put_app("1234", Secret("zqAppSecret12345"), name="My app")
    assert store.app_secret("1234").reveal() == "zqAppSecret12345"
    store.put_app("1234", None, require_app_secret=True)
    assert store.get_app("1234").require_app_secret is True
    assert store.app_secret("1234").reveal() == "zqAppSecret12345"


# --- associated data, tampering, keys -----------------------------------------------------


def _swap(url: str, raw_db: Any, a: tuple[str, int], b: tuple[str, int]) -> None:
    """Exchange the encrypted columns of two version rows behind the store's back."""
    cols = "ciphertext, wrapped_key, kek_id"
    q = sa.text(
        f"SELECT v.id, {cols} FROM versions v JOIN credentials c ON c.id = v.credential_id "
        "WHERE c.name = :name AND v.version = :version"
    )
    with raw_db(url) as conn:
        ra = conn.execute(q, {"name": a[0], "version": a[1]}).one()
        rb = conn.execute(q, {"name": b[0], "version": b[1]}).one()
        upd = sa.text(
            "UPDATE versions SET ciphertext = :c, wrapped_key = :w, kek_id = :k WHERE id = :id"
        )
        conn.execute(upd, {"c": rb[1], "w": rb[2], "k": rb[3], "id": ra[0]})
        conn.execute(upd, {"c": ra[1], "w": ra[2], "k": ra[3], "id": rb[0]})


def test_swapped_ciphertexts_between_credentials_fail(store: Store, raw_db: Any) -> None:
    """Associated data binds a ciphertext to its credential: a swap fails, naming both rows."""
    add(store, "acme/one", "zqValueOne111")
    add(store, "acme/two", "zqValueTwo222")
    _swap(store.url, raw_db, ("acme/one", 1), ("acme/two", 1))
    for name in ("acme/one", "acme/two"):
        with pytest.raises(DecryptionError) as info:
            store.reveal(name)
        assert info.value.name == name  # type: ignore[attr-defined]
        assert info.value.version == 1  # type: ignore[attr-defined]
        assert f"'{name}' version 1" in info.value.message
        assert info.value.hint


def test_swapped_ciphertexts_between_versions_fail(store: Store, raw_db: Any) -> None:
    """...and to its version number."""
    add(store, "acme/m", "zqValueOne111")
    store.add_pending("acme/m", Secret("zqValueTwo222"), VersionMeta())
    _swap(store.url, raw_db, ("acme/m", 1), ("acme/m", 2))
    for number in (1, 2):
        with pytest.raises(DecryptionError) as info:
            store.reveal("acme/m", number)
        assert info.value.version == number  # type: ignore[attr-defined]


@pytest.mark.parametrize("column", ["ciphertext", "wrapped_key"])
def test_tampered_byte_fails_with_the_credential_named(
    store: Store, raw_db: Any, column: str
) -> None:
    add(store, "acme/m", "zqValueOne111")
    with raw_db(store.url) as conn:
        blob = bytearray(conn.execute(sa.text(f"SELECT {column} FROM versions")).scalar_one())
        blob[len(blob) // 2] ^= 0x80
        conn.execute(sa.text(f"UPDATE versions SET {column} = :b"), {"b": bytes(blob)})
    with pytest.raises(DecryptionError, match="'acme/m' version 1") as info:
        store.reveal("acme/m")
    assert info.value.name == "acme/m"  # type: ignore[attr-defined]


def test_wrong_key_gives_a_precise_error(settings: Settings, store: Store) -> None:
    """With a different key file, reading says which key is missing and which credential."""
    add(store, "acme/m", "zqValueOne111")
    old_id = store.keyring.active_id
    write_key_file(settings.resolved_key_file, [generate_key()])
    other = open_store(settings)
    try:
        with pytest.raises(CryptoError) as info:
            other.reveal("acme/m")
    finally:
        other.close()
    assert old_id in info.value.message and "'acme/m' version 1" in info.value.message
    assert info.value.name == "acme/m"  # type: ignore[attr-defined]
    assert info.value.hint


def test_missing_key_file(settings: Settings) -> None:
    settings.resolved_key_file.unlink()
    with pytest.raises(KeyFileError, match="does not exist") as info:
        open_store(settings)
    assert "permatoken init" in (info.value.hint or "")


def test_rewrap_moves_every_data_key_and_is_resumable(settings: Settings, store: Store) -> None:
    """Rewrap in small batches; stopping after one batch and running again finishes the job."""
    for i in range(5):
        add(store, f"acme/c{i}", f"zqValue{i}abcdefgh")
    store.put_secret("acme/c0", "refresh_token", Secret("zqRefresh12345"))
    store.put_app("777", Secret("zqAppSecret12345"))
    old = store.keyring.active_id
    keys = read_key_file_keys(settings.resolved_key_file)
    new = generate_key()
    write_key_file(settings.resolved_key_file, [*keys, new])
    rotated = open_store(settings)
    try:

        class Stop(Exception):
            pass

        def stop(_n: int) -> None:
            raise Stop

        with pytest.raises(Stop):
            rotated.rewrap(batch=2, progress=stop)
        usage = rotated.kek_usage()
        assert usage == {old: 5, kek_id_of(new): 2}
        assert rotated.rewrap(batch=2) == 5
        assert rotated.kek_usage() == {kek_id_of(new): 7}
    finally:
        rotated.close()
    write_key_file(settings.resolved_key_file, [new])  # the old key is gone
    only_new = open_store(settings)
    try:
        for i in range(5):
            assert only_new.reveal(f"acme/c{i}").reveal() == f"zqValue{i}abcdefgh"
        assert only_new.get_secret("acme/c0", "refresh_token").reveal() == "zqRefresh12345"
        assert only_new.app_secret("777").reveal() == "zqAppSecret12345"
    finally:
        only_new.close()


def test_env_key_store(settings: Settings, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """PERMATOKEN_KEY (base64) replaces the key file, and several keys may be given."""
    k1, k2 = generate_key(), generate_key()
    monkeypatch.setenv("PERMATOKEN_KEY", base64.b64encode(k1).decode())
    from permatoken.settings import load_settings

    s = load_settings()
    st = open_store(s)
    try:
        add(st, "env/m", "zqEnvValue12345")
        assert st.version("env/m").kek_id == kek_id_of(k1)
    finally:
        st.close()
    monkeypatch.setenv(
        "PERMATOKEN_KEY", f"{base64.b64encode(k1).decode()},{base64.b64encode(k2).decode()}"
    )
    st = open_store(load_settings())
    try:
        assert st.rewrap() == 1
    finally:
        st.close()
    monkeypatch.setenv("PERMATOKEN_KEY", base64.b64encode(k2).decode())
    st = open_store(load_settings())
    try:
        assert st.reveal("env/m").reveal() == "zqEnvValue12345"
    finally:
        st.close()
