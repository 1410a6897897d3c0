"""How old the last good backup is: the ``status`` line and ``backup status``; the metric
``permatoken_last_backup_timestamp_seconds`` (absent until a backup succeeded) is collected by
:mod:`.metric`, so the command line does not import Prometheus."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..policy import format_duration
from ..timeutil import isoformat

if TYPE_CHECKING:
    from ..store.backups import BackupRecord

METRIC = "permatoken_last_backup_timestamp_seconds"


def last_backup_json(last: BackupRecord | None, now: datetime) -> dict[str, Any] | None:
    """``last_backup`` as JSON: when, where, how big, and its age in seconds; None if never."""
    if last is None or last.finished_at is None:
        return None
    return {
        "at": isoformat(last.finished_at),
        "age_seconds": round(max(0.0, (now - last.finished_at).total_seconds())),
        "kind": last.kind,
        "path": last.path,
        "size": last.size,
    }


def last_backup_line(last: BackupRecord | None, now: datetime) -> str:
    """One line for humans, e.g. ``last backup: 2026-12-01T06:00:00Z (3h ago, scheduled)``."""
    data = last_backup_json(last, now)
    if data is None:
        return "last backup: never (take one: `permatoken backup --out FILE`)"
    return (
        f"last backup: {data['at']} ({format_duration(data['age_seconds']) or '0s'} ago, "
        f"{data['kind']})"
    )


__all__ = ["METRIC", "last_backup_json", "last_backup_line"]
