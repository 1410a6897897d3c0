"""Backups that restore anywhere: take (:mod:`.create`), check (:mod:`.verify`), restore
(:mod:`.restore`), and take them on a schedule in ``serve`` (:mod:`.schedule`).

The file format is in :mod:`.format` (pure; written and read by :mod:`.stream`) and
docs/backup.md; its keys in :mod:`.sealing`; the last good backup's age in :mod:`.status`;
the consistent read and the one-transaction load in :mod:`permatoken.store.snapshot`.
"""

from .create import BackupResult, create_backup
from .restore import RestoreResult, restore_backup
from .verify import Verified, verify_backup

__all__ = [
    "BackupResult",
    "RestoreResult",
    "Verified",
    "create_backup",
    "restore_backup",
    "verify_backup",
]
