"""Checking a backup without writing anything: format, MACs, and that every secret opens.

Order of work: the header is read, the keys found (the passphrase opens the sealed KEKs, or the
store's keys are loaded), then one pass checks the MACs over the whole file before anything of
the body is decoded, and a second pass decodes every row and opens every sealed value in memory
(the plaintext is dropped at once, never printed or logged).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .._exceptions import (
    BackupError,
    BackupTamperedError,
    CryptoError,
    DecryptionError,
    KeyFileError,
)
from .._secret import Secret
from ..crypto import Keyring
from ..store.snapshot import SealedColumns, sealed_columns
from .format import Header, read_header
from .sealing import kek_mac_key, open_keys
from .stream import BackupReader


@dataclass
class Verified:
    """What a successful check found."""

    path: Path
    size: int
    header: Header
    keyring: Keyring
    #: The KEKs sealed under the passphrase (active last), when one was given.
    sealed_keys: list[bytes] | None
    macs_checked: list[str]
    #: MAC keys by position in the header: a second read must match this very backup.
    mac_keys: dict[int, bytes] = field(default_factory=dict, repr=False)
    counts: dict[str, int] = field(default_factory=dict)
    kek_ids_used: set[str] = field(default_factory=set)
    secrets_opened: int = 0

    def to_json(self) -> dict[str, Any]:
        from ..timeutil import isoformat

        return {
            "ok": True,
            "path": str(self.path),
            "size": self.size,
            "format": self.header.format,
            "created_at": isoformat(self.header.created_at),
            "schema_revision": self.header.schema_revision,
            "source_dialect": self.header.source_dialect,
            "permatoken_version": self.header.permatoken_version,
            "kek_ids": sorted(self.kek_ids_used),
            "passphrase": self.header.passphrase is not None,
            "macs_checked": self.macs_checked,
            "secrets_opened": self.secrets_opened,
            "counts": self.counts,
        }


@contextlib.contextmanager
def opened(path: Path) -> Iterator[tuple[BinaryIO, int, Header, bytes]]:
    """The open file, its size, its header and the raw bytes before its body."""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise BackupError(
            f"cannot read backup {path}: {exc.strerror or type(exc).__name__}", path=str(path)
        ) from None
    with f:
        import os

        size = os.fstat(f.fileno()).st_size
        header, head = read_header(f, size)
        yield f, size, header, head


def unlock(
    header: Header, *, keyring: Callable[[], Keyring], passphrase: Secret | None
) -> tuple[Keyring, dict[int, bytes], list[bytes] | None]:
    """The keyring that opens the backup, its MAC keys by position, and any sealed KEKs."""
    sealed_keys = None
    mac_keys: dict[int, bytes] = {}
    if passphrase is not None:
        if header.passphrase is None:
            raise BackupError(
                "this backup was written without a passphrase; it opens with the store's keys",
                hint="run `permatoken backup verify FILE` or `permatoken restore FILE` without "
                "--passphrase-file",
            )
        sealed_keys, pass_key = open_keys(passphrase, header.passphrase)
        ring = Keyring(sealed_keys, source="the backup (passphrase)")
        mac_keys[_index(header, "passphrase")] = pass_key
    else:
        try:
            ring = keyring()
        except KeyFileError as exc:
            if header.passphrase is None:
                raise
            raise KeyFileError(
                f"{exc.message}; this backup also carries its keys sealed under a passphrase",
                hint="run it again with --passphrase-file FILE (e.g. `permatoken restore FILE "
                "--passphrase-file F`)",
            ) from exc
    spec = header.macs[_index(header, "kek")]
    if spec.kek_id != header.active_kek_id or spec.kek_id not in header.kek_ids:
        # Written equal; they differ only in a changed header (whose MAC cannot be checked yet).
        raise BackupTamperedError(
            "the backup's header names its keys inconsistently: the file was changed",
            hint="run `permatoken backup verify FILE` on another copy",
        )
    try:
        mac_keys[_index(header, "kek")] = kek_mac_key(ring, spec)
    except DecryptionError as exc:
        raise BackupTamperedError(
            "the backup's MAC key does not open under its KEK: the file was changed",
            hint="run `permatoken backup verify FILE` on another copy",
        ) from exc
    except CryptoError as exc:
        raise CryptoError(
            f"the backup was written with key {spec.kek_id}, which is not loaded here",
            hint="load the key file that holds it (PERMATOKEN_KEY_FILE), or verify with "
            "`permatoken backup verify FILE --passphrase-file F` if it was written with one",
            kek_id=spec.kek_id,
        ) from exc
    return ring, mac_keys, sealed_keys


def _index(header: Header, kind: str) -> int:
    for i, spec in enumerate(header.macs):
        if spec.kind == kind:
            return i
    raise BackupTamperedError(
        f"the backup's header has no {kind} MAC: the file was changed",
        hint="run `permatoken backup verify FILE` on another copy",
    )


def verify_backup(
    path: Path, *, keyring: Callable[[], Keyring], passphrase: Secret | None = None
) -> Verified:
    """Check ``path`` completely (see the module docstring); raise on the first problem."""
    with opened(path) as (f, size, header, head):
        ring, mac_keys, sealed_keys = unlock(header, keyring=keyring, passphrase=passphrase)
        reader = BackupReader(f, size, header, head, mac_keys)
        reader.check()
        checked = [header.macs[i].kind for i in sorted(mac_keys)]
        result = Verified(path, size, header, ring, sealed_keys, checked, mac_keys)
        registry = sealed_columns()
        for name, columns, rows in reader.records():
            sealed = registry.get(name)
            names = [c for c, _ in columns]
            for row in rows:
                if sealed is not None:
                    _open(result, sealed, name, dict(zip(names, row, strict=True)))
        result.counts = dict(reader.counts)
    return result


def _open(result: Verified, sealed: SealedColumns, table: str, row: dict[str, Any]) -> None:
    value = sealed.sealed(row)
    try:
        result.keyring.open(value, sealed.aad(row))  # dropped at once: only whether it opens
    except CryptoError as exc:
        where = ", ".join(f"{k}={row[k]}" for k in _row_id(table, row))
        raise CryptoError(
            f"a sealed value in {table} ({where}) does not open with the keys available: "
            f"{exc.message}",
            hint="`permatoken keys status` lists the keys loaded here: load the one that wrapped "
            "it, or use `permatoken restore FILE --passphrase-file F` if the backup has one",
            table=table,
        ) from exc
    result.kek_ids_used.add(value.kek_id)
    result.secrets_opened += 1


def _row_id(table: str, row: dict[str, Any]) -> list[str]:
    """Non-secret columns that name a row in messages."""
    keys = ["id", "credential_id", "version", "name"]
    return [k for k in keys if k in row and not isinstance(row[k], bytes | bytearray)]


__all__ = ["Verified", "opened", "unlock", "verify_backup"]
