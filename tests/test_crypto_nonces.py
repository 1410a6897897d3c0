"""No AES-GCM nonce is ever used twice under one key: every nonce drawn is observed.

Comparing two ciphertexts proves nothing here (a fresh random data key per value makes them
differ even with a fixed nonce), so these tests look at the nonces themselves: the first 12
bytes of every ciphertext and every wrapped data key, in memory and in the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from permatoken._secret import Secret
from permatoken.crypto import Keyring, Sealed, generate_key
from permatoken.models import NewCredential, VersionMeta
from permatoken.store import Store

NONCE = 12
AAD = b"permatoken/v1/credential:1/version:1"


class RecordingNonces:
    """A nonce source that hands out OS randomness and remembers every nonce it gave."""

    def __init__(self) -> None:
        self.drawn: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        nonce = os.urandom(n)
        self.drawn.append(nonce)
        return nonce


def _nonces(sealed: list[Sealed]) -> tuple[list[bytes], list[bytes]]:
    return [s.ciphertext[:NONCE] for s in sealed], [s.wrapped_key[:NONCE] for s in sealed]


def test_every_seal_and_wrap_uses_a_fresh_nonce_from_the_source() -> None:
    """500 values under one KEK: 1,000 nonces used, each the one just drawn, none repeated."""
    source = RecordingNonces()
    ring = Keyring([generate_key()], source="test", nonces=source)
    sealed = [ring.seal(b"zqSameValueEveryTime0123", AAD) for _ in range(500)]
    values, wraps = _nonces(sealed)
    assert len(source.drawn) == 1000
    # Each seal draws the value's nonce, then the wrap's: exactly what is stored, in order.
    assert [n for pair in zip(values, wraps, strict=True) for n in pair] == source.drawn
    assert all(len(n) == NONCE for n in source.drawn)
    assert len(set(wraps)) == 500, "a nonce was reused under the KEK"
    assert len(set(values)) == 500, "a value nonce was reused"
    assert len({ring.unwrap(s.kek_id, s.wrapped_key) for s in sealed}) == 500  # one DEK each


def test_the_default_nonce_source_is_the_operating_systems_csprng() -> None:
    assert Keyring([generate_key()], source="test").nonces is os.urandom


def test_rewrapping_draws_a_fresh_nonce_for_every_data_key() -> None:
    """Moving 200 values to a new KEK wraps each DEK under a nonce of its own."""
    old = generate_key()
    sealed = [Keyring([old], source="old").seal(b"zqValue0123456789", AAD) for _ in range(200)]
    source = RecordingNonces()
    ring = Keyring([old, generate_key()], source="both", nonces=source)
    moved = [ring.rewrap(s) for s in sealed]
    wraps = [m.wrapped_key[:NONCE] for m in moved]
    assert wraps == source.drawn and len(set(wraps)) == 200
    assert {m.kek_id for m in moved} == {ring.active_id}
    assert [m.ciphertext for m in moved] == [s.ciphertext for s in sealed]


def _stored(url: str, raw_db: Callable[[str], Any]) -> dict[str, list[tuple[str, bytes, bytes]]]:
    """(kek id, wrapped-key nonce, value nonce) of every sealed row, per table."""
    queries = {
        "versions": "SELECT kek_id, wrapped_key, ciphertext FROM versions",
        "credential_secrets": "SELECT kek_id, wrapped_key, ciphertext FROM credential_secrets",
        "apps": "SELECT secret_kek_id, secret_wrapped_key, secret_ciphertext FROM apps",
    }
    with raw_db(url) as conn:
        return {
            table: [
                (r[0], bytes(r[1])[:NONCE], bytes(r[2])[:NONCE]) for r in conn.execute(sa.text(q))
            ]
            for table, q in queries.items()
        }


def _assert_unique_under_each_kek(rows: list[tuple[str, bytes, bytes]]) -> None:
    by_kek: dict[str, list[bytes]] = {}
    for kek_id, wrap_nonce, _ in rows:
        by_kek.setdefault(kek_id, []).append(wrap_nonce)
    for kek_id, nonces in by_kek.items():
        assert len(set(nonces)) == len(nonces), f"a wrap nonce repeats under {kek_id}"


def test_stored_wrapped_keys_under_one_kek_have_distinct_nonces(
    store: Store, store_url: str, raw_db: Callable[[str], Any], cli: Callable[..., Any]
) -> None:
    """Rows of every sealed table, before and after `keys rotate` re-wraps them: no wrap nonce
    repeats under a KEK, and no value nonce repeats at all."""
    store.put_app("123456", Secret("zqAppSecret0123456789"))
    for i in range(8):
        name = f"acme/c{i}"
        store.add_credential(
            NewCredential(name=name), Secret(f"zqFirst{i}x0123456789"), VersionMeta()
        )
        store.put_secret(name, "refresh_token", Secret(f"zqRefresh{i}x0123456789"))
        for j in range(3):
            v = store.add_pending(name, Secret(f"zqNext{i}x{j}x0123456789"), VersionMeta())
            store.promote(name, v.version)
    before = _stored(store_url, raw_db)
    assert [len(before[t]) for t in ("versions", "credential_secrets", "apps")] == [32, 8, 1]
    everything = [row for rows in before.values() for row in rows]
    assert len({kek for kek, _, _ in everything}) == 1
    _assert_unique_under_each_kek(everything)
    assert len({value for _, _, value in everything}) == len(everything)

    assert cli("keys", "rotate").rc == 0
    after = [row for rows in _stored(store_url, raw_db).values() for row in rows]
    assert len({kek for kek, _, _ in after}) == 1 and after[0][0] != everything[0][0]
    _assert_unique_under_each_kek(after)
    assert not {w for _, w, _ in after} & {w for _, w, _ in everything}
