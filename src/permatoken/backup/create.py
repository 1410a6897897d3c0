"""Taking a backup: one consistent snapshot of the store, streamed into a file written atomically.

The file appears at its final path complete or not at all: it is written to a temporary file in
the same directory (created with mode 0600, never wider), fsynced, renamed over the final path,
and the directory is fsynced. A process killed mid-write leaves only a ``.NAME.PID.tmp`` file,
which the next backup to the same path removes. Values are copied sealed as stored: no token is
decrypted, so no plaintext ever reaches the file or the temporary file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._exceptions import BackupError
from .._secret import Secret
from ..store import snapshot
from ..store.repository import Store
from .format import Header, MacSpec
from .sealing import new_kek_mac, seal_keys
from .stream import BackupWriter

#: Called after every row written with (table, rows written so far): progress bars, test pauses.
Checkpoint = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    sha256: str
    counts: dict[str, int]
    schema_revision: str
    kek_ids: tuple[str, ...]
    created_at: datetime
    passphrase: bool

    def to_json(self) -> dict[str, Any]:
        from ..timeutil import isoformat

        return {
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "counts": self.counts,
            "schema_revision": self.schema_revision,
            "kek_ids": list(self.kek_ids),
            "created_at": isoformat(self.created_at),
            "passphrase": self.passphrase,
        }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("permatoken")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def create_backup(
    store: Store,
    out: Path,
    *,
    passphrase: Secret | None = None,
    force: bool = False,
    checkpoint: Checkpoint | None = None,
) -> BackupResult:
    """Write a backup of everything in ``store`` to ``out`` (see the module docstring)."""
    out = out.absolute()
    if out.exists() and not force:
        raise BackupError(
            f"{out} already exists; a backup never overwrites a file unasked",
            hint=f"choose another path, or run `permatoken backup --out {out} --force`",
            path=str(out),
        )
    if not out.parent.is_dir():
        raise BackupError(
            f"directory {out.parent} does not exist",
            hint=f"create it (`mkdir -p {out.parent}`), then run `permatoken backup --out {out}`",
            path=str(out),
        )
    _remove_stale_temps(out)
    specs: list[MacSpec] = []
    keys: list[bytes] = []
    sealed = None
    ring = store.keyring.current()  # one key set for the whole backup
    if passphrase is not None:
        sealed, pass_key = seal_keys(passphrase, ring)
        specs.append(MacSpec("passphrase"))
        keys.append(pass_key)
    # The KEK MAC goes last, so it covers the passphrase MAC too (format.py).
    kek_spec, kek_key = new_kek_mac(ring)
    specs.append(kek_spec)
    keys.append(kek_key)
    with snapshot.read(store.engine, store.url) as snap:
        header = Header(
            created_at=store.clock.now(),
            schema_revision=snap.revision,
            source_dialect=snap.dialect,
            permatoken_version=_version(),
            kek_ids=tuple(ring.ids),
            active_kek_id=ring.active_id,
            macs=tuple(specs),
            passphrase=sealed,
        )
        size, digest, counts = _write_atomically(out, header, keys, snap, checkpoint)
    return BackupResult(
        out,
        size,
        digest,
        counts,
        header.schema_revision,
        header.kek_ids,
        header.created_at,
        passphrase is not None,
    )


def _write_atomically(
    out: Path,
    header: Header,
    keys: list[bytes],
    snap: snapshot.Snapshot,
    checkpoint: Checkpoint | None,
) -> tuple[int, str, dict[str, int]]:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _write_error(out, exc) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            writer = BackupWriter(f, header, keys)
            total = 0
            for layout in snap.tables:
                writer.begin_table(layout.name, layout.columns)
                for row in snap.rows(layout):
                    writer.row(row)
                    total += 1
                    if checkpoint is not None:
                        checkpoint(layout.name, total)
                writer.end_table()
            digest = writer.close()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise _write_error(out, exc) from exc
        raise
    _fsync_dir(out.parent)
    return writer.size, digest, dict(writer.counts)


def _write_error(out: Path, exc: OSError) -> BackupError:
    return BackupError(
        f"cannot write the backup to {out}: {exc.strerror or type(exc).__name__}",
        hint=f"check the directory's space and permissions, then run `permatoken backup --out {out}`",
        path=str(out),
    )


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _remove_stale_temps(out: Path) -> None:
    """Temporary files of backups to ``out`` whose writer is gone (killed mid-write)."""
    for tmp in out.parent.glob(f".{out.name}.*.tmp"):
        pid = tmp.name[len(out.name) + 2 : -4]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["BackupResult", "Checkpoint", "create_backup"]
