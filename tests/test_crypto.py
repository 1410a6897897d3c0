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
from permatoken.live_keyring import LiveKeyring, load_live_keyring

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


# --- the live keyring: a running process follows its key file -------------------------------


def test_live_keyring_opens_data_keys_wrapped_by_a_key_added_to_the_file(tmp_path: Path) -> None:
    """Another process appends a key and re-wraps under it: an unwrap that meets the unknown
    KEK id re-reads the file instead of failing."""
    path = tmp_path / "key"
    old, new = generate_key(), generate_key()
    write_key_file(path, [old])
    live = load_live_keyring(None, path)
    write_key_file(path, [old, new])
    moved = Keyring([old, new], source="other process").seal(PLAIN, AAD)
    assert moved.kek_id == kek_id_of(new)
    assert live.open(moved, AAD) == PLAIN
    assert live.active_id == kek_id_of(new)


def test_live_keyring_seals_under_the_newest_key_as_soon_as_the_file_changes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key"
    old, new = generate_key(), generate_key()
    write_key_file(path, [old])
    live = load_live_keyring(None, path)
    assert live.seal(PLAIN, AAD).kek_id == kek_id_of(old)
    write_key_file(path, [old, new])
    assert live.seal(PLAIN, AAD).kek_id == kek_id_of(new)
    write_key_file(path, [new])  # pruned
    assert live.ids == [kek_id_of(new)]


def test_live_keyring_keeps_its_keys_when_the_file_breaks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-edited or deleted key file never takes keys away from a running process; the
    failed re-read is logged once, not once per seal."""
    path = tmp_path / "key"
    key = generate_key()
    write_key_file(path, [key])
    live = load_live_keyring(None, path)
    sealed = live.seal(PLAIN, AAD)
    path.write_text("garbage\n")
    for _ in range(3):
        assert live.open(live.seal(PLAIN, AAD), AAD) == PLAIN
    path.unlink()
    assert live.open(sealed, AAD) == PLAIN and live.active_id == kek_id_of(key)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2  # one for the garbage, one for the deletion
    assert b64(key) not in caplog.text


def test_live_keyring_does_not_reread_the_file_for_every_unknown_kek(tmp_path: Path) -> None:
    """Reads of a row whose KEK is nowhere re-read the key file when it changed, not on
    every request."""
    path = tmp_path / "key"
    keys = [generate_key()]
    write_key_file(path, keys)
    loads: list[int] = []

    def load() -> Keyring:
        loads.append(1)
        return Keyring.from_file(path)

    live = LiveKeyring(load, source=str(path), path=path, reread_every=3600)
    stray = Keyring([generate_key()], source="t").seal(PLAIN, AAD)
    for _ in range(20):
        with pytest.raises(CryptoError, match="which is not loaded") as info:
            live.open(stray, AAD)
    assert len(loads) == 1  # the first load only
    write_key_file(path, keys)  # same keys, a new file: worth one look
    for _ in range(20):
        with pytest.raises(CryptoError):
            live.open(stray, AAD)
    assert len(loads) == 2
    assert str(path) in info.value.message and "backup" in (info.value.hint or "")


def test_live_keyring_refuses_to_seal_when_its_check_fails(tmp_path: Path) -> None:
    """The check given by open_store runs before the first seal under each key set."""
    path = tmp_path / "key"
    write_key_file(path, [generate_key()])
    seen: list[str] = []

    def verify(ring: Keyring) -> None:
        seen.append(ring.active_id)
        raise CryptoError("cannot open data already in the store")

    live = load_live_keyring(None, path, verify=verify)
    with pytest.raises(CryptoError, match="already in the store"):
        live.seal(PLAIN, AAD)
    assert seen == [live.active_id]


def test_env_key_names_which_value_is_malformed() -> None:
    good = b64(generate_key())
    with pytest.raises(KeyFileError, match="PERMATOKEN_KEY value 2 of 3") as info:
        Keyring.from_env_value(Secret(f"{good},{b64(os.urandom(8))},{good}"))
    assert "backup" in (info.value.hint or "")


@pytest.mark.parametrize("content", ["", "# only a comment\n", "not base64 at all!"])
def test_a_damaged_key_file_hint_says_restore_not_init(tmp_path: Path, content: str) -> None:
    """`permatoken init` cannot repair a key: the hint says to restore it from backup."""
    path = tmp_path / "key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as info:
        Keyring.from_file(path)
    hint = info.value.hint or ""
    assert "backup" in hint and "PERMATOKEN_KEY" in hint and "permatoken init" not in hint


def test_writing_a_symlinked_key_file_writes_its_target(tmp_path: Path) -> None:
    target = tmp_path / "mounted" / "key"
    write_key_file(target, [generate_key()])
    link = tmp_path / "key"
    link.symlink_to(target)
    keys = [*read_key_file_keys(link), generate_key()]
    write_key_file(link, keys)
    assert link.is_symlink() and read_key_file_keys(target) == keys
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_key_file_that_cannot_be_written_leaves_no_copy_behind(tmp_path: Path) -> None:
    """A failed write (here: the target is a directory) is a KeyFileError, and the temporary
    file holding the keys is removed."""
    path = tmp_path / "key"
    path.mkdir()
    with pytest.raises(KeyFileError, match="cannot write key file"):
        write_key_file(path, [generate_key()])
    assert [p.name for p in tmp_path.iterdir()] == ["key"]
