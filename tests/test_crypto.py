"""Envelope encryption: AES-256-GCM values, associated-data binding, KEK wrapping and key files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from permatoken._exceptions import CryptoError, DecryptionError, KeyFileError
from permatoken._secret import Secret
from permatoken.crypto import (
    KEY_BYTES,
    Keyring,
    Sealed,
    generate_key,
    kek_id_of,
    load_keyring,
    read_key_file_keys,
    write_key_file,
)

AAD = b"permatoken/v1/credential:1/version:1"
PLAIN = b"zqPlaintextToken0123456789"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def ring() -> Keyring:
    return Keyring([generate_key()], source="test")


def test_round_trip(ring: Keyring) -> None:
    sealed = ring.seal(PLAIN, AAD)
    assert ring.open(sealed, AAD) == PLAIN
    assert PLAIN not in sealed.ciphertext and PLAIN not in sealed.wrapped_key
    assert sealed.kek_id == ring.active_id
    assert PLAIN.decode() not in repr(sealed)


def test_each_value_gets_its_own_data_key_and_nonce(ring: Keyring) -> None:
    """Sealing the same value twice gives unrelated ciphertexts and wrapped keys."""
    a, b = ring.seal(PLAIN, AAD), ring.seal(PLAIN, AAD)
    assert a.ciphertext != b.ciphertext
    assert a.wrapped_key != b.wrapped_key


def test_associated_data_binds_the_row(ring: Keyring) -> None:
    """A ciphertext opened with another row's associated data fails authentication."""
    sealed = ring.seal(PLAIN, AAD)
    with pytest.raises(DecryptionError):
        ring.open(sealed, b"permatoken/v1/credential:1/version:2")


@pytest.mark.parametrize("part", ["nonce", "ciphertext", "tag", "wrapped_key"])
def test_any_flipped_byte_is_detected(ring: Keyring, part: str) -> None:
    """Tampering anywhere gives DecryptionError, never garbage."""
    sealed = ring.seal(PLAIN, AAD)
    ct, wk = bytearray(sealed.ciphertext), bytearray(sealed.wrapped_key)
    {"nonce": ct, "ciphertext": ct, "tag": ct, "wrapped_key": wk}[part][
        {"nonce": 0, "ciphertext": 14, "tag": -1, "wrapped_key": 20}[part]
    ] ^= 0x01
    with pytest.raises(DecryptionError):
        ring.open(Sealed(bytes(ct), bytes(wk), sealed.kek_id), AAD)


def test_truncated_ciphertext_is_detected(ring: Keyring) -> None:
    sealed = ring.seal(PLAIN, AAD)
    with pytest.raises(DecryptionError):
        ring.open(Sealed(sealed.ciphertext[:5], sealed.wrapped_key, sealed.kek_id), AAD)


def test_wrong_key_names_the_missing_kek(ring: Keyring) -> None:
    """A keyring without the wrapping KEK says which key is needed."""
    sealed = ring.seal(PLAIN, AAD)
    other = Keyring([generate_key()], source="other")
    with pytest.raises(CryptoError, match=sealed.kek_id) as info:
        other.open(sealed, AAD)
    assert info.value.kek_id == sealed.kek_id  # type: ignore[attr-defined]
    assert info.value.hint


def test_wrong_key_under_a_forged_kek_id_fails_authentication(ring: Keyring) -> None:
    """Even if a row claims the other keyring's KEK id, the wrapped key does not open."""
    sealed = ring.seal(PLAIN, AAD)
    other = Keyring([generate_key()], source="other")
    with pytest.raises(DecryptionError):
        other.open(Sealed(sealed.ciphertext, sealed.wrapped_key, other.active_id), AAD)


def test_rewrap_changes_only_the_wrapped_key() -> None:
    """Rotation re-wraps the data key; the value ciphertext is untouched and still opens."""
    old, new = generate_key(), generate_key()
    sealed = Keyring([old], source="t").seal(PLAIN, AAD)
    both = Keyring([old, new], source="t")
    assert both.active_id == kek_id_of(new)
    moved = both.rewrap(sealed)
    assert moved.ciphertext == sealed.ciphertext
    assert moved.kek_id == kek_id_of(new) and moved.wrapped_key != sealed.wrapped_key
    assert Keyring([new], source="t").open(moved, AAD) == PLAIN
    assert both.rewrap(moved) is moved


def test_kek_id_is_stable_and_not_the_key() -> None:
    key = generate_key()
    assert kek_id_of(key) == kek_id_of(key) != kek_id_of(generate_key())
    assert b64(key) not in kek_id_of(key)


# --- key files --------------------------------------------------------------------------


def test_write_key_file_is_0600_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key"
    keys = [generate_key(), generate_key()]
    write_key_file(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file_keys(path) == keys
    ring = Keyring.from_file(path)
    assert ring.active_id == kek_id_of(keys[-1])
    assert ring.ids == [kek_id_of(k) for k in keys]


def test_key_file_allows_comments_and_blank_lines(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "key"
    path.write_text(f"# a comment\n\n  {b64(key)}  \n")
    path.chmod(0o600)
    assert Keyring.from_file(path).active_id == kek_id_of(key)


def test_missing_key_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist") as info:
        Keyring.from_file(tmp_path / "nope")
    assert "permatoken init" in (info.value.hint or "")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key"
    write_key_file(path, [generate_key()])
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"{mode:04o}") as info:
        Keyring.from_file(path)
    assert info.value.hint == f"chmod 600 {path}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b64(os.urandom(16)), "16 bytes, expected 32"),
        (b64(os.urandom(33)), "33 bytes, expected 32"),
        ("not base64 at all!", "not valid base64"),
        ("# only a comment\n", "no key found"),
        ("", "no key found"),
    ],
)
def test_bad_key_file_contents(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        Keyring.from_file(path)


def test_binary_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"\xff\xfe" + os.urandom(30))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a permatoken key file"):
        Keyring.from_file(path)


def test_key_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "key").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        Keyring.from_file(tmp_path / "key")


def test_env_key_comma_separated_last_active() -> None:
    """PERMATOKEN_KEY holds one or more base64 keys; the last one wraps new data keys."""
    k1, k2 = generate_key(), generate_key()
    ring = Keyring.from_env_value(Secret(f"{b64(k1)}, {b64(k2)},"))
    assert ring.ids == [kek_id_of(k1), kek_id_of(k2)]
    assert ring.active_id == kek_id_of(k2)
    assert b64(k1) not in repr(ring) and b64(k2) not in repr(ring)


def test_env_key_wrong_length_is_refused() -> None:
    with pytest.raises(KeyFileError, match=f"expected {KEY_BYTES}"):
        Keyring.from_env_value(Secret(b64(os.urandom(8))))


def test_env_key_wins_over_key_file(tmp_path: Path) -> None:
    env_key, file_key = generate_key(), generate_key()
    path = tmp_path / "key"
    write_key_file(path, [file_key])
    assert load_keyring(Secret(b64(env_key)), path).active_id == kek_id_of(env_key)
    assert load_keyring(None, path).active_id == kek_id_of(file_key)
