"""How old the last good backup is: the ``status`` line, ``backup status``, and the metric
``permatoken_last_backup_timestamp_seconds`` (absent until a backup succeeded)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..policy import format_duration
from ..store.backups import BackupLog, BackupRecord
from ..store.repository import Store
from ..timeutil import isoformat

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


class LastBackupCollector(Collector):
    """Reads the time of the last good backup at scrape time (cached ``max_age`` seconds)."""

    def __init__(self, store: Store, *, max_age: float = 15.0) -> None:
        self.log = BackupLog(store)
        self.max_age = max_age
        self._value: float | None = None
        self._at = -1e9
        self._lock = threading.Lock()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(METRIC, "")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                last = self.log.last()
                finished = last.finished_at if last is not None else None
                self._value = finished.timestamp() if finished is not None else None
                self._at = time.monotonic()
            value = self._value
        family = GaugeMetricFamily(
            METRIC, "Unix time of the last backup that completed (absent: never)."
        )
        if value is not None:
            family.add_metric([], value)
        yield family


__all__ = ["METRIC", "LastBackupCollector", "last_backup_json", "last_backup_line"]
