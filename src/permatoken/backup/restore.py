"""Restoring a backup into the (empty) store the settings name, from any engine to any engine.

Order of work, so that a refusal changes nothing:

1. Verify the whole file (:func:`verify_backup`): MACs, format, every secret opens with the
   keys the target will use. Nothing is written before this succeeds.
2. Refuse a target that already holds data (any row in any permatoken table).
3. Keys. Without a passphrase the target's own keys (key file or ``PERMATOKEN_KEY``) must hold
   every KEK the backup uses. With a passphrase the KEKs sealed in the backup are used: if
   ``PERMATOKEN_KEY`` is set, or a key file exists, it must already hold them (it is never
   changed); otherwise they are written to a new key file (mode 0600), which is removed again
   if the load fails.
4. Load everything in one transaction (:meth:`permatoken.store.restore_target.RestoreTarget.load`
   over :func:`permatoken.store.snapshot.load`): schema created or migrated as needed, rows
   copied as stored (still sealed), PostgreSQL sequences moved past the loaded ids, the MACs
   checked again over the bytes actually loaded, then an event and an audit record of the
   restore appended (the copied audit chain continues, so `audit verify` holds). A failure
   rolls back all of it, and a SQLite file the restore created is removed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exceptions import CryptoError, KeyFileError
from .._secret import Secret
from ..crypto import Keyring, kek_id_of, load_keyring, write_key_file
from ..settings import Settings
from ..store import snapshot
from ..store.restore_target import RestoreTarget
from .stream import BackupReader
from .verify import Verified, opened, verify_backup


@dataclass(frozen=True, slots=True)
class RestoreResult:
    path: Path
    target: str
    counts: dict[str, int]
    schema_revision: str
    key_file_written: Path | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "target": self.target,
            "counts": self.counts,
            "schema_revision": self.schema_revision,
            "key_file_written": str(self.key_file_written) if self.key_file_written else None,
        }


def restore_backup(
    settings: Settings, path: Path, *, passphrase: Secret | None = None, actor: str = "cli"
) -> RestoreResult:
    """Restore ``path`` into the store ``settings`` names (see the module docstring)."""

    def target_keys() -> Keyring:
        return load_keyring(
            settings.key, settings.resolved_key_file, kms_key_id=settings.kms_key_id
        )

    verified = verify_backup(path, keyring=target_keys, passphrase=passphrase)
    snapshot.check_revision(verified.header.schema_revision)
    target = RestoreTarget(settings.resolved_database_url)
    key_file: Path | None = None
    try:
        target.refuse_data()
        ring = verified.keyring
        if passphrase is not None:
            ring, key_file = _target_keyring(settings, verified)
        counts = _load(target, path, ring, verified, actor)
    except BaseException:
        target.discard()
        if key_file is not None:
            with contextlib.suppress(OSError):
                key_file.unlink()
        raise
    target.close()
    return RestoreResult(
        path,
        target.description,
        counts,
        verified.header.schema_revision,
        key_file,
    )


def _target_keyring(settings: Settings, verified: Verified) -> tuple[Keyring, Path | None]:
    """With a passphrase: the target's keys if it has some (they must match), else a new key file."""
    needed = verified.kek_ids_used | {verified.header.active_kek_id}
    assert verified.sealed_keys is not None
    path = settings.resolved_key_file
    if settings.key is not None or path.exists():
        where = "PERMATOKEN_KEY" if settings.key is not None else f"key file {path}"
        ring = load_keyring(settings.key, path)
        missing = sorted(verified.kek_ids_used - set(ring.ids))
        if missing:
            raise KeyFileError(
                f"{where} does not hold the key(s) this backup uses ({', '.join(missing)}); "
                "restore never changes existing keys",
                hint="move that key file away (or unset PERMATOKEN_KEY) so that "
                "`permatoken restore FILE --passphrase-file F` writes the backup's keys",
            )
        return ring, None
    keys = verified.sealed_keys
    if not needed <= {kek_id_of(k) for k in keys}:
        raise CryptoError(
            "the keys sealed in the backup do not include the ones its data uses",
            hint="run `permatoken backup verify FILE --passphrase-file F`; restore another backup",
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    if path.parent == settings.home:
        os.chmod(settings.home, 0o700)
    write_key_file(path, keys)
    return Keyring.from_file(path), path


def _load(
    target: RestoreTarget, path: Path, ring: Keyring, verified: Verified, actor: str
) -> dict[str, int]:
    header = verified.header
    detail = {
        "file": path.name,
        "created_at": header.created_at.isoformat(),
        "schema_revision": header.schema_revision,
        "source_dialect": header.source_dialect,
        "rows": sum(verified.counts.values()),
    }

    def tables() -> snapshot.TableStream:
        # The file is read again: the MACs of the verified backup are checked again over the
        # bytes loaded here, so a file swapped or changed since the check rolls the load back.
        with opened(path) as (f, size, hdr, head):
            reader = BackupReader(f, size, hdr, head, verified.mac_keys)
            for name, columns, rows in reader.records():
                yield snapshot.TableLayout(name, tuple(columns)), rows

    return target.load(
        revision=header.schema_revision, tables=tables(), keyring=ring, actor=actor, detail=detail
    )


__all__ = ["RestoreResult", "restore_backup"]
