"""The metric ``permatoken_last_backup_timestamp_seconds``: the time of the last good backup,
read from the backup log at scrape time (absent until a backup succeeded)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..store.backups import BackupLog
from ..store.repository import Store
from .status import METRIC


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


__all__ = ["LastBackupCollector"]
