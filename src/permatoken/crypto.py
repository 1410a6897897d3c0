"""Envelope encryption and key-encryption-key (KEK) providers.

Each value is encrypted with AES-256-GCM under its own random 256-bit data key (DEK). The
associated data binds the ciphertext to its row (credential id and version), so a ciphertext
copied to another row fails to decrypt. The DEK is wrapped (AES-256-GCM again) by a KEK; the
KEK's id is stored next to the wrapped DEK so several KEKs can coexist during a key rotation.

Nonces: every AES-GCM encryption takes a fresh 96-bit nonce from the OS CSPRNG (the keyring's
``nonces`` source) and stores it in front of its ciphertext. A nonce repeated under one key
would reveal the XOR of two plaintexts and let an attacker forge tags, so nothing here ever
derives, counts or reuses one. Under a DEK there is exactly one encryption; under a KEK one wrap
per stored value (and per re-wrap), far below the 2**32 random-nonce encryptions per key that
NIST SP 800-38D allows. ``tests/test_crypto_nonces.py`` observes every nonce drawn.

KEKs come from ``PERMATOKEN_KEY`` (base64; several comma-separated, the last one active) or
from a key file (one base64 key per line, ``#`` comments allowed, the last key active), which
must be readable by its owner only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._exceptions import CryptoError, DecryptionError, KeyFileError
from ._secret import Secret

KEY_BYTES = 32
_NONCE_BYTES = 12
_WRAP_AAD = b"permatoken/dek/v1:"


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted value as stored: nonce+ciphertext, the wrapped data key, and the KEK id."""

    ciphertext: bytes
    wrapped_key: bytes
    kek_id: str

    def __repr__(self) -> str:
        return f"Sealed(kek_id={self.kek_id!r}, {len(self.ciphertext)} bytes)"


def kek_id_of(key: bytes) -> str:
    """A stable, non-reversible id for a KEK."""
    return "kek-" + hashlib.sha256(b"permatoken/kek-id:" + key).hexdigest()[:12]


def generate_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(
            f"{where}: key is not valid base64",
            hint="a key is 32 random bytes in base64; `permatoken init` generates one",
        ) from None
    if len(raw) != KEY_BYTES:
        raise KeyFileError(
            f"{where}: key is {len(raw)} bytes, expected {KEY_BYTES}",
            hint="a key is 32 random bytes in base64; `permatoken init` generates one",
        )
    return raw


class Keyring:
    """The KEKs this process holds; the last one added is the active one for new wraps."""

    def __init__(
        self,
        keys: list[bytes],
        *,
        source: str,
        nonces: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not keys:
            raise KeyFileError(f"{source}: no key found", hint="run `permatoken init`")
        self._keys: dict[str, bytes] = {}
        for key in keys:
            self._keys[kek_id_of(key)] = key
        self.active_id = kek_id_of(keys[-1])
        self.source = source
        #: Where every AES-GCM nonce comes from (n -> n random bytes); tests observe it.
        self.nonces = nonces

    def __repr__(self) -> str:
        return f"Keyring(source={self.source!r}, ids={list(self._keys)}, active={self.active_id!r})"

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_env_value(cls, value: Secret) -> Keyring:
        parts = [p for p in value.reveal().split(",") if p.strip()]
        return cls([_decode_key(p, "PERMATOKEN_KEY") for p in parts], source="PERMATOKEN_KEY")

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyFileError(
                f"key file {path} does not exist",
                hint="run `permatoken init` to create one, or set PERMATOKEN_KEY_FILE / PERMATOKEN_KEY",
                path=str(path),
            ) from None
        except OSError as exc:
            raise KeyFileError(
                f"key file {path} cannot be read: {exc.strerror}", path=str(path)
            ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file", path=str(path))
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
                hint=f"chmod 600 {path}",
                path=str(path),
            )
        if st.st_size > 64 * 1024:
            raise KeyFileError(f"key file {path} is too large to be a key file", path=str(path))
        try:
            text = path.read_text(encoding="ascii")  # pragma: no mutate (codec names ignore case)
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(
                f"key file {path} is not a permatoken key file", path=str(path)
            ) from exc
        lines = [ln.strip() for ln in text.splitlines()]
        keys = [
            _decode_key(ln, f"key file {path} line {i}")
            for i, ln in enumerate(lines, 1)
            if ln and not ln.startswith("#")
        ]
        return cls(keys, source=str(path))

    # -- wrapping --------------------------------------------------------------------
    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        nonce = self.nonces(_NONCE_BYTES)
        kek = self._keys[self.active_id]
        aad = _WRAP_AAD + self.active_id.encode()
        return self.active_id, nonce + AESGCM(kek).encrypt(nonce, dek, aad)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        kek = self._keys.get(kek_id)
        if kek is None:
            raise CryptoError(
                f"data key is wrapped by {kek_id}, which is not loaded",
                hint="load the key file or PERMATOKEN_KEY that holds that key",
                kek_id=kek_id,
            )
        try:
            return AESGCM(kek).decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _WRAP_AAD + kek_id.encode()
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("wrapped data key failed authentication", kek_id=kek_id) from exc

    def rewrap(self, sealed: Sealed) -> Sealed:
        """The same value under the active KEK; the value ciphertext is untouched."""
        if sealed.kek_id == self.active_id:
            return sealed
        kek_id, wrapped = self.wrap(self.unwrap(sealed.kek_id, sealed.wrapped_key))
        return Sealed(sealed.ciphertext, wrapped, kek_id)

    # -- values ----------------------------------------------------------------------
    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        dek = AESGCM.generate_key(bit_length=256)
        nonce = self.nonces(_NONCE_BYTES)
        ciphertext = nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)
        kek_id, wrapped = self.wrap(dek)
        return Sealed(ciphertext, wrapped, kek_id)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        dek = self.unwrap(sealed.kek_id, sealed.wrapped_key)
        try:
            return AESGCM(dek).decrypt(
                sealed.ciphertext[:_NONCE_BYTES], sealed.ciphertext[_NONCE_BYTES:], aad
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext failed authentication") from exc


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Write ``keys`` (last one active) atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = "# permatoken key-encryption keys, one per line; the last one is active.\n"
    body += "".join(base64.b64encode(k).decode() + "\n" for k in keys)
    # 0600 from the first byte, not only after the chmod below (see docs/development.md).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # pragma: no mutate
    try:
        os.write(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_key_file_keys(path: Path) -> list[bytes]:
    ring = Keyring.from_file(path)
    return [ring._keys[i] for i in ring.ids]


def load_keyring(key: Secret | None, key_file: Path) -> Keyring:
    """``PERMATOKEN_KEY`` wins over the key file when both are set."""
    if key is not None:
        return Keyring.from_env_value(key)
    return Keyring.from_file(key_file)
