"""The store and its key-encryption keys: the key check, the write guard, naming bad rows."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from conftest import random_token
from permatoken._exceptions import CryptoError
from permatoken._secret import Secret
from permatoken.crypto import generate_key, kek_id_of, read_key_file_keys, write_key_file
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings, load_settings
from permatoken.store import Store, open_store


def add(store: Store, name: str) -> str:
    value = random_token()
    store.add_credential(NewCredential(name=name), Secret(value), VersionMeta())
    return value


def _with_key(monkeypatch: pytest.MonkeyPatch, *keys: bytes) -> Store:
    monkeypatch.setenv("PERMATOKEN_KEY", ",".join(base64.b64encode(k).decode() for k in keys))
    return open_store(load_settings())


def test_key_problems_name_each_missing_key_and_a_row_it_wraps(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, "acme/wa")
    store.put_secret("acme/wa", "refresh_token", Secret(random_token()))
    store.put_app("777", Secret(random_token()))
    assert store.key_problems() == []
    other = _with_key(monkeypatch, generate_key())
    try:
        problems = other.key_problems()
    finally:
        other.close()
    assert [(p.kek_id, p.where, p.reason) for p in problems] == [
        (store.keyring.active_id, "'acme/wa' version 1", "is not loaded")
    ]


def test_a_wrong_key_cannot_seal_anything_into_the_store(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch, db_rows: Any
) -> None:
    """Keys that cannot open the stored data refuse every seal (credential, secret, app), so
    one store never ends up half under a key nobody keeps. Nothing is written."""
    add(store, "acme/wa")
    before = db_rows(store.url)
    wrong = _with_key(monkeypatch, generate_key())
    try:
        attempts = [
            lambda: add(wrong, "acme/two"),
            lambda: wrong.put_secret("acme/wa", "refresh_token", Secret(random_token())),
            lambda: wrong.put_app("777", Secret(random_token())),
        ]
        for attempt in attempts:
            with pytest.raises(CryptoError, match="cannot open data already in the store") as e:
                attempt()
            assert store.keyring.active_id in e.value.message
            assert "'acme/wa' version 1" in e.value.message
    finally:
        wrong.close()
    assert db_rows(store.url) == before


def test_keys_that_open_the_data_may_add_a_new_active_key(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard is no obstacle to the rotation flow: old key loaded, new key last."""
    add(store, "acme/wa")
    (old,) = read_key_file_keys(settings.resolved_key_file)
    new = generate_key()
    both = _with_key(monkeypatch, old, new)
    try:
        add(both, "acme/two")
        assert both.version("acme/two").kek_id == kek_id_of(new)
    finally:
        both.close()


def test_an_empty_store_takes_any_key(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = _with_key(monkeypatch, generate_key())
    try:
        add(fresh, "acme/wa")
    finally:
        fresh.close()


def test_a_key_file_replaced_by_another_key_is_refused_on_the_next_seal(
    settings: Settings, store: Store
) -> None:
    """A running process whose key file is overwritten by an unrelated key (a botched
    restore) keeps reading with what it holds, but never seals under the stranger."""
    value = add(store, "acme/wa")
    write_key_file(settings.resolved_key_file, [generate_key()])
    with pytest.raises(CryptoError, match="cannot open data already in the store"):
        add(store, "acme/two")
    assert store.reveal("acme/wa").reveal() == value


def test_rewrap_names_the_row_it_cannot_open(settings: Settings, store: Store, raw_db: Any) -> None:
    import sqlalchemy as sa

    for i in range(3):
        add(store, f"acme/c{i}")
    with raw_db(store.url) as conn:
        conn.execute(
            sa.text(
                "UPDATE versions SET wrapped_key = :b WHERE credential_id = "
                "(SELECT id FROM credentials WHERE name = 'acme/c1')"
            ),
            {"b": b"\0" * 60},
        )
    keys = read_key_file_keys(settings.resolved_key_file)
    write_key_file(settings.resolved_key_file, [*keys, generate_key()])
    with pytest.raises(CryptoError, match="cannot re-wrap 'acme/c1' version 1") as info:
        store.rewrap(batch=1)
    assert info.value.table == "versions"  # type: ignore[attr-defined]


def test_a_rotation_step_makes_the_credential_due_when_its_lease_expires(
    settings: Settings, store: Store
) -> None:
    """If the worker dies mid-rotation, the scheduler claims the credential when the lease
    lapses instead of waiting for the next planned renewal."""
    from datetime import timedelta

    add(store, "acme/wa")
    store.update_credential("acme/wa", next_due_at=store.clock.now() + timedelta(days=40))
    assert store.acquire_lease("acme/wa", "w1", 120)
    store.set_rotation("acme/wa", "w1", "obtaining", {"attempt": 1}, ttl=120)
    owner, expires = store.lease_holder("acme/wa")
    assert owner == "w1" and store.get("acme/wa").next_due_at == expires
    later = store.clock.now() + timedelta(hours=3)
    store.set_rotation("acme/wa", "w1", None, None, next_due_at=later)
    assert store.get("acme/wa").next_due_at == later  # a finished step plans as it says


def test_the_key_check_runs_before_the_write_transaction_not_inside_it(
    settings: Settings, store: Store
) -> None:
    """A write never needs a second connection while it holds the first (under a storm of
    writers the pool would be empty and the write lock held while waiting for one)."""
    import sqlalchemy as sa

    add(store, "acme/wa")
    fresh = open_store(settings)  # its key check is due at its first seal
    out, peak = [0], [0]

    def checkout(*_: Any) -> None:
        out[0] += 1
        peak[0] = max(peak[0], out[0])

    def checkin(*_: Any) -> None:
        out[0] -= 1

    sa.event.listen(fresh.engine, "checkout", checkout)
    sa.event.listen(fresh.engine, "checkin", checkin)
    try:
        add(fresh, "acme/two")
    finally:
        fresh.close()
    assert peak[0] == 1
