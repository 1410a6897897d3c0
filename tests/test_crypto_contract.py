"""What key handling promises to its callers, exactly: errors, ids, limits and the file format.

Each error is compared whole (code, message, hint, context) because the CLI shows all of it and
scripts read the code and context; each hint must name a command that exists. These tests are
also what `make mutate` measures crypto.py against (docs/development.md).
"""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from permatoken._exceptions import CryptoError, DecryptionError, KeyFileError
from permatoken._secret import Secret
from permatoken.crypto import Keyring, generate_key, kek_id_of, write_key_file

AAD = b"permatoken/v1/credential:1/version:1"
BAD_KEY_HINT = "a key is 32 random bytes in base64; `permatoken init` generates one"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _key_file(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    path.chmod(0o600)
    return path


def _refusal(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    return dict(exc.value.to_dict())


def test_kek_id_golden_vector() -> None:
    """KEK ids are stored next to every wrapped key: the derivation can never change."""
    assert kek_id_of(bytes(range(32))) == "kek-41028efb63d8"


def test_a_key_with_characters_outside_base64_is_refused_not_cleaned() -> None:
    """A stray character is an error, never silently dropped (the key would be another one)."""
    text = b64(generate_key())
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_env_value(Secret(text[:10] + "!" + text[10:]))
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": "PERMATOKEN_KEY: key is not valid base64",
        "hint": BAD_KEY_HINT,
    }


def test_a_key_file_error_names_the_line(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "key", f"# keys\n\n{b64(os.urandom(16))}\n")
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(path)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {path} line 3: key is 16 bytes, expected 32",
        "hint": BAD_KEY_HINT,
    }


def test_an_empty_keyring_is_refused_with_a_hint() -> None:
    with pytest.raises(KeyFileError) as exc:
        Keyring([], source="somewhere")
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": "somewhere: no key found",
        "hint": "run `permatoken init`",
    }


def test_a_keyring_says_where_its_keys_came_from(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "key"
    write_key_file(path, [key])
    assert Keyring.from_file(path).source == str(path)
    assert Keyring.from_env_value(Secret(b64(key))).source == "PERMATOKEN_KEY"
    assert Keyring([key], source="test").source == "test"


def test_key_file_refusals_carry_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(missing)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {missing} does not exist",
        "hint": "run `permatoken init` to create one, or set PERMATOKEN_KEY_FILE / PERMATOKEN_KEY",
        "path": str(missing),
    }
    under_a_file = _key_file(tmp_path / "plain", "x") / "key"
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(under_a_file)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {under_a_file} cannot be read: Not a directory",
        "path": str(under_a_file),
    }
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(directory)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {directory} is not a regular file",
        "path": str(directory),
    }


def test_a_key_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_key_file(path, [generate_key()])
    path.chmod(0o640)
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(path)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {path} is readable by others (mode 0640)",
        "hint": f"chmod 600 {path}",
        "path": str(path),
    }


def test_a_key_file_may_be_64_kib_and_no_more(tmp_path: Path) -> None:
    key = b64(generate_key()) + "\n"

    def sized(n: int) -> Path:
        filler = "#" + "x" * (n - len(key) - 2) + "\n"
        path = _key_file(tmp_path / f"key-{n}", filler + key)
        assert path.stat().st_size == n
        return path

    assert Keyring.from_file(sized(64 * 1024)).ids
    big = sized(64 * 1024 + 1)
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(big)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {big} is too large to be a key file",
        "path": str(big),
    }


def test_a_key_file_is_ascii_only(tmp_path: Path) -> None:
    """Not even a UTF-8 comment: a key file is written by `permatoken init`, never by hand."""
    path = _key_file(tmp_path / "key", f"# clé\n{b64(generate_key())}\n")
    with pytest.raises(KeyFileError) as exc:
        Keyring.from_file(path)
    assert _refusal(exc) == {
        "code": "key_file_error",
        "message": f"key file {path} is not a permatoken key file",
        "path": str(path),
    }


def test_write_key_file_format(tmp_path: Path) -> None:
    """A header comment, then one base64 key per line; missing directories are created."""
    keys = [generate_key(), generate_key()]
    path = tmp_path / "a" / "b" / "key"
    write_key_file(path, keys)
    assert path.read_text() == (
        "# permatoken key-encryption keys, one per line; the last one is active.\n"
        + "".join(b64(k) + "\n" for k in keys)
    )


def test_decryption_refusals_are_typed_and_name_the_key() -> None:
    ring = Keyring([generate_key()], source="test")
    sealed = ring.seal(b"zqValue0123456789", AAD)
    stranger = Keyring([generate_key()], source="other")
    with pytest.raises(CryptoError) as exc:
        stranger.open(sealed, AAD)
    assert _refusal(exc) == {
        "code": "crypto_error",
        "message": f"data key is wrapped by {ring.active_id}, which is not loaded",
        "hint": "load the key file or PERMATOKEN_KEY that holds that key",
        "kek_id": ring.active_id,
    }
    flipped = sealed.wrapped_key[:-1] + bytes([sealed.wrapped_key[-1] ^ 1])
    with pytest.raises(DecryptionError) as exc:
        ring.open(dataclasses.replace(sealed, wrapped_key=flipped), AAD)
    assert _refusal(exc) == {
        "code": "decryption_failed",
        "message": "wrapped data key failed authentication",
        "kek_id": ring.active_id,
    }
    with pytest.raises(DecryptionError) as exc:
        ring.open(sealed, AAD + b"x")
    assert _refusal(exc) == {
        "code": "decryption_failed",
        "message": "ciphertext failed authentication",
    }
