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
must be readable by its owner only. With ``PERMATOKEN_KMS_KEY_ID`` an AWS KMS key is the active
KEK instead (:mod:`permatoken.kms`; ids ``kms:{ARN}``), and any file or environment keys stay
loaded only to read data keys still wrapped by them (``keys rotate`` moves those to KMS).

A :class:`Keyring` is one immutable set of keys. A store holds a
:class:`~permatoken.live_keyring.LiveKeyring`, which follows the key file while the process runs.
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
from typing import TYPE_CHECKING

from ._exceptions import CryptoError, DecryptionError, KeyFileError
from ._secret import Secret

if TYPE_CHECKING:
    from .kms import KmsKek

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


#: A damaged or missing key is restored, never regenerated: a new key opens none of the data
#: sealed under the old one (and `permatoken init` refuses to write one over a store holding data).
RESTORE_HINT = (
    "restore the key file from your backup (or set PERMATOKEN_KEY to the key, base64); "
    "`permatoken keys status` lists the keys the store needs"
)


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{where}: key is not valid base64", hint=RESTORE_HINT) from None
    if len(raw) != KEY_BYTES:
        raise KeyFileError(
            f"{where}: key is {len(raw)} bytes, expected {KEY_BYTES}", hint=RESTORE_HINT
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
        kms: KmsKek | None = None,
    ) -> None:
        if not keys and kms is None:
            raise KeyFileError(f"{source}: no key found", hint=RESTORE_HINT)
        self._keys: dict[str, bytes] = {}
        for key in keys:
            self._keys[kek_id_of(key)] = key
        #: The KMS key that wraps new data keys (None: the last local key does).
        self.kms = kms
        self.active_id = kms.id if kms is not None else kek_id_of(keys[-1])
        self.source = source
        #: Where every AES-GCM nonce comes from (n -> n random bytes); tests observe it.
        self.nonces = nonces

    def __repr__(self) -> str:
        return f"Keyring(source={self.source!r}, ids={list(self._keys)}, active={self.active_id!r})"

    @property
    def ids(self) -> list[str]:
        return [*self._keys, *([self.active_id] if self.kms is not None else [])]

    def raw_keys(self) -> dict[str, bytes]:
        """The local KEKs by id (a copy): secret material, for sealing into a backup and for
        reading a key file's keys. A KMS key never appears here (it never leaves KMS)."""
        return dict(self._keys)

    def __contains__(self, kek_id: object) -> bool:
        # A ``kms:{ARN}`` id names its own key: KMS is asked, and answers or refuses.
        return kek_id in self._keys or (isinstance(kek_id, str) and kek_id.startswith("kms:"))

    def including(self, older: Keyring) -> Keyring:
        """This key set plus the keys of ``older`` it lacks; this one's active key stays active."""
        keys = [k for i, k in older._keys.items() if i not in self._keys]
        if self.kms is not None:
            keys += list(self._keys.values())
            return Keyring(keys, source=self.source, nonces=self.nonces, kms=self.kms)
        keys += [k for i, k in self._keys.items() if i != self.active_id]
        return Keyring([*keys, self._keys[self.active_id]], source=self.source, nonces=self.nonces)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_env_value(cls, value: Secret) -> Keyring:
        parts = [p for p in value.reveal().split(",") if p.strip()]
        where = "PERMATOKEN_KEY" if len(parts) < 2 else "PERMATOKEN_KEY value {} of {}"
        keys = [_decode_key(p, where.format(i, len(parts))) for i, p in enumerate(parts, 1)]
        return cls(keys, source="PERMATOKEN_KEY")

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyFileError(
                f"key file {path} does not exist",
                hint="restore it from your backup, or set PERMATOKEN_KEY_FILE / PERMATOKEN_KEY to "
                "where the key is; only for a new, empty store run `permatoken init` to create one",
                path=str(path),
            ) from None
        except OSError as exc:
            raise KeyFileError(
                f"key file {path} cannot be read: {exc.strerror}", path=str(path)
            ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(
                f"key file {path} is not a regular file", hint=RESTORE_HINT, path=str(path)
            )
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
                hint=f"chmod 600 {path}",
                path=str(path),
            )
        if st.st_size > 64 * 1024:
            raise KeyFileError(
                f"key file {path} is too large to be a key file", hint=RESTORE_HINT, path=str(path)
            )
        try:
            text = path.read_text(encoding="ascii")  # pragma: no mutate (codec names ignore case)
        except UnicodeDecodeError as exc:
            raise KeyFileError(
                f"key file {path} is not a permatoken key file", hint=RESTORE_HINT, path=str(path)
            ) from exc
        except OSError as exc:
            raise KeyFileError(
                f"key file {path} cannot be read: {exc.strerror}", path=str(path)
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
        if self.kms is not None:
            return self.kms.wrap(dek)
        # cryptography is imported by the first use of a key, not by loading one: `status` loads
        # the keyring (the key check) but never seals or opens a value.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = self.nonces(_NONCE_BYTES)
        kek = self._keys[self.active_id]
        aad = _WRAP_AAD + self.active_id.encode()
        return self.active_id, nonce + AESGCM(kek).encrypt(nonce, dek, aad)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id.startswith("kms:"):
            return self._kms_for(kek_id).unwrap(kek_id, wrapped)
        kek = self._keys.get(kek_id)
        if kek is None:
            raise CryptoError(
                f"data key is wrapped by {kek_id}, which is not loaded",
                hint="load the key file or PERMATOKEN_KEY that holds that key",
                kek_id=kek_id,
            )
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(kek).decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _WRAP_AAD + kek_id.encode()
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("wrapped data key failed authentication", kek_id=kek_id) from exc

    def _kms_for(self, kek_id: str) -> KmsKek:
        from .kms import reader

        if self.kms is not None and kek_id == self.active_id:
            return self.kms
        ttl = self.kms.cache.ttl if self.kms is not None else 300.0
        return reader(kek_id, cache_seconds=ttl)

    def rewrap(self, sealed: Sealed) -> Sealed:
        """The same value under the active KEK; the value ciphertext is untouched."""
        if sealed.kek_id == self.active_id:
            return sealed
        kek_id, wrapped = self.wrap(self.unwrap(sealed.kek_id, sealed.wrapped_key))
        return Sealed(sealed.ciphertext, wrapped, kek_id)

    # -- values ----------------------------------------------------------------------
    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        dek = AESGCM.generate_key(bit_length=256)
        nonce = self.nonces(_NONCE_BYTES)
        ciphertext = nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)
        kek_id, wrapped = self.wrap(dek)
        return Sealed(ciphertext, wrapped, kek_id)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        dek = self.unwrap(sealed.kek_id, sealed.wrapped_key)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(dek).decrypt(
                sealed.ciphertext[:_NONCE_BYTES], sealed.ciphertext[_NONCE_BYTES:], aad
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext failed authentication") from exc


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Write ``keys`` (last one active) atomically with mode 0600.

    A symlinked key file (a mounted secret) is written where the link points, and stays a link.
    """
    if path.is_symlink():
        path = path.resolve()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = "# permatoken key-encryption keys, one per line; the last one is active.\n"
    body += "".join(base64.b64encode(k).decode() + "\n" for k in keys)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 from the first byte, not only after the chmod below (see docs/development.md).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # pragma: no mutate
        try:
            os.write(fd, body.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except BaseException as exc:
        # Never leave a stray copy of the keys behind (an interrupt, a full disk, a read-only mount).
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise KeyFileError(
                f"cannot write key file {path}: {exc.strerror}",
                hint="if the key file is managed elsewhere (a mounted secret), append a new key "
                "there yourself (`openssl rand -base64 32`), then run `permatoken keys rotate`",
                path=str(path),
            ) from exc
        raise


def _fsync_directory(path: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_key_file_keys(path: Path) -> list[bytes]:
    ring = Keyring.from_file(path)
    raw = ring.raw_keys()
    return [raw[i] for i in ring.ids]


def load_keyring(
    key: Secret | None,
    key_file: Path,
    *,
    kms_key_id: str | None = None,
    kms_cache_seconds: float = 300.0,
) -> Keyring:
    """The keys as they are now; ``PERMATOKEN_KEY`` wins over the key file when both are set,
    and a KMS key (``PERMATOKEN_KMS_KEY_ID``) is the active one when set: local keys are then
    optional and only read with. (A long-running process uses
    :func:`permatoken.live_keyring.load_live_keyring`.)"""
    if kms_key_id:
        from .kms import KmsKek

        local: list[bytes] = []
        if key is not None:
            local = list(Keyring.from_env_value(key).raw_keys().values())
        elif key_file.exists() or key_file.is_symlink():
            local = read_key_file_keys(key_file)
        kms = KmsKek(kms_key_id, cache_seconds=kms_cache_seconds)
        return Keyring(local, source=f"AWS KMS key {kms_key_id}", kms=kms)
    if key is not None:
        return Keyring.from_env_value(key)
    return Keyring.from_file(key_file)
