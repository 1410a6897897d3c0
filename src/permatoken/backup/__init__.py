"""Backups that restore anywhere: take (:mod:`.create`), check (:mod:`.verify`), restore
(:mod:`.restore`), and take them on a schedule in ``serve`` (:mod:`.schedule`).

The file format is in :mod:`.format` (pure; written and read by :mod:`.stream`) and
docs/backup.md; its keys in :mod:`.sealing`; the last good backup's age in :mod:`.status`
(its metric in :mod:`.metric`); the consistent read and the one-transaction load in
:mod:`permatoken.store.snapshot`.

Names are loaded on first use, so ``permatoken status`` (which reads :mod:`.status` for its
"last backup" line) does not import the writer, the reader and their crypto.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .create import BackupResult, create_backup
    from .restore import RestoreResult, restore_backup
    from .verify import Verified, verify_backup

_WHERE = {
    "BackupResult": "create",
    "create_backup": "create",
    "RestoreResult": "restore",
    "restore_backup": "restore",
    "Verified": "verify",
    "verify_backup": "verify",
}

__all__ = [
    "BackupResult",
    "RestoreResult",
    "Verified",
    "create_backup",
    "restore_backup",
    "verify_backup",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
