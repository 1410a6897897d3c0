"""Keys of a backup: its MAC keys, and the key-encryption keys sealed under a passphrase.

Two MACs, so that tampering is caught by whoever holds *either* secret:

- ``kek``: a random 32-byte key, wrapped by the store's active KEK (the same AES-GCM wrap as a
  data key) and stored in the header; the MAC key is HKDF-SHA256 of it. Anyone with the store's
  keys (``verify`` on the same machine, ``restore`` without a passphrase) can check it; nobody
  without them can forge it. It works with any key provider that can wrap and unwrap.
- ``passphrase`` (with ``--passphrase-file``): Argon2id (RFC 9106's second recommended
  parameters: 64 MiB, 3 passes, 4 lanes) derives a master key; HKDF splits it into the MAC key
  and the key that seals every KEK (AES-256-GCM) so the backup restores where no key file exists.

Plaintext keys exist only in memory. Nothing here ever sees a token.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._exceptions import CryptoError, InputError, WrongPassphraseError
from .._secret import Secret
from ..crypto import Keyring
from .format import MacSpec, PassphraseSpec

ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
ARGON2_MEMORY_KIB = 64 * 1024
_NONCE = 12
_MAX_PASSPHRASE_FILE = 4096


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


# --- the KEK MAC -----------------------------------------------------------------------------


def new_kek_mac(keyring: Keyring) -> tuple[MacSpec, bytes]:
    """A fresh MAC key wrapped by the active KEK: (header spec, MAC key)."""
    seed = os.urandom(32)
    kek_id, wrapped = keyring.wrap(seed)
    return MacSpec("kek", kek_id, wrapped), _hkdf(seed, b"permatoken/backup/v1/mac/kek")


def kek_mac_key(keyring: Keyring, spec: MacSpec) -> bytes:
    """The MAC key of a ``kek`` spec (CryptoError when that KEK is not loaded)."""
    assert spec.kek_id is not None and spec.wrapped_key is not None
    return _hkdf(keyring.unwrap(spec.kek_id, spec.wrapped_key), b"permatoken/backup/v1/mac/kek")


# --- the passphrase -------------------------------------------------------------------------


def read_passphrase(path: Path) -> Secret:
    """A passphrase from a file readable by its owner only (like the key file); not empty."""
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(
            f"cannot read passphrase file {path}: {exc.strerror}",
            hint=f"check the path: `ls -l {path}`",
            path=str(path),
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"passphrase file {path} is not a regular file",
            hint=f"`ls -l {path}`: give a file holding the passphrase",
            path=str(path),
        )
    if st.st_mode & 0o077:
        raise InputError(
            f"passphrase file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod 600 {path}",
            path=str(path),
        )
    if st.st_size > _MAX_PASSPHRASE_FILE:
        raise InputError(
            f"passphrase file {path} is larger than 4 KiB; it is not a passphrase file",
            hint=f"`ls -l {path}`: give the file that holds only the passphrase",
            path=str(path),
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"passphrase file {path} is not readable UTF-8 text",
            hint=f"`ls -l {path}`: give the file that holds only the passphrase",
            path=str(path),
        ) from exc
    # One trailing newline is what editors and `echo` add; it is not part of the passphrase.
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise InputError(
            f"passphrase file {path} is empty; a backup passphrase must not be",
            hint=f"write a long random passphrase into it, e.g. `openssl rand -base64 32 > {path}`",
            path=str(path),
        )
    return Secret(text)


def _master(passphrase: Secret, spec: PassphraseSpec) -> bytes:
    return Argon2id(
        salt=spec.salt,
        length=32,
        iterations=spec.iterations,
        lanes=spec.lanes,
        memory_cost=spec.memory_kib,
    ).derive(passphrase.reveal().encode("utf-8"))


def _seal_aad(spec: PassphraseSpec) -> bytes:
    return b"permatoken/backup/v1/keks:" + spec.salt


def seal_keys(passphrase: Secret, keyring: Keyring) -> tuple[PassphraseSpec, bytes]:
    """Seal every KEK of ``keyring`` (active last) under ``passphrase``: (spec, MAC key)."""
    spec = PassphraseSpec(os.urandom(16), ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB, b"")
    master = _master(passphrase, spec)
    body = json.dumps([k.hex() for k in export_keys(keyring)]).encode()
    nonce = os.urandom(_NONCE)
    sealed = nonce + AESGCM(_hkdf(master, b"permatoken/backup/v1/seal")).encrypt(
        nonce, body, _seal_aad(spec)
    )
    spec = PassphraseSpec(spec.salt, spec.iterations, spec.lanes, spec.memory_kib, sealed)
    return spec, _hkdf(master, b"permatoken/backup/v1/mac/passphrase")


def open_keys(passphrase: Secret, spec: PassphraseSpec) -> tuple[list[bytes], bytes]:
    """The sealed KEKs (active last) and the passphrase MAC key; a wrong passphrase is refused."""
    if not (1 <= spec.iterations <= 64 and 1 <= spec.lanes <= 64 and spec.memory_kib <= 4 << 20):
        raise WrongPassphraseError(
            "the backup's passphrase parameters are out of range: the file was changed",
            hint="run `permatoken backup verify FILE` on another copy",
        )
    master = _master(passphrase, spec)
    try:
        body = AESGCM(_hkdf(master, b"permatoken/backup/v1/seal")).decrypt(
            spec.sealed_keks[:_NONCE], spec.sealed_keks[_NONCE:], _seal_aad(spec)
        )
    except (InvalidTag, ValueError) as exc:
        raise WrongPassphraseError(
            "the passphrase does not open this backup's keys (wrong passphrase, or a damaged file)",
            hint="check the passphrase file, then run `permatoken backup verify FILE "
            "--passphrase-file F`",
        ) from exc
    keys = [bytes.fromhex(k) for k in json.loads(body)]
    return keys, _hkdf(master, b"permatoken/backup/v1/mac/passphrase")


def export_keys(keyring: Keyring) -> list[bytes]:
    """The raw KEKs of a keyring, active last (a provider that cannot export them is refused)."""
    raw = keyring.raw_keys()
    ids = [k for k in keyring.ids if k != keyring.active_id] + [keyring.active_id]
    if any(k not in raw for k in ids):
        raise CryptoError(
            f"the active key is {keyring.active_id}, which never leaves AWS KMS, so it cannot "
            "be sealed into a backup",
            hint="run `permatoken backup --out FILE` without --passphrase-file: the backup "
            "restores wherever this identity may use the KMS key (docs/aws.md)",
        )
    return [raw[k] for k in ids]


__all__ = [
    "export_keys",
    "kek_mac_key",
    "new_kek_mac",
    "open_keys",
    "read_passphrase",
    "seal_keys",
]
