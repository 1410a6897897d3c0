"""Sink lag as Prometheus metrics, per sink kind only (no credential name, no destination):

- ``permatoken_sinks{kind}``: sinks configured;
- ``permatoken_sinks_behind{kind}``: sinks holding an older value than the current one;
- ``permatoken_sink_max_lag_seconds{kind}``: the longest a sink of that kind has been behind.

Read from the database at scrape time, cached ``max_age`` seconds (one query per scrape).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..store.repository import Store
from ..store.sinks import SinkTable
from .base import KINDS

METRICS = ("permatoken_sinks", "permatoken_sinks_behind", "permatoken_sink_max_lag_seconds")


def _kind(url: str) -> str:
    return url.split("://", 1)[0]


class SinkLagCollector(Collector):
    def __init__(self, store: Store, *, max_age: float = 5.0) -> None:
        self.table = SinkTable(store)
        self.store = store
        self.max_age = max_age
        self._values: dict[str, tuple[int, int, float]] = {}
        self._at = -1e9
        self._lock = threading.Lock()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name in METRICS:
            yield GaugeMetricFamily(name, "", labels=["kind"])

    def _read(self) -> dict[str, tuple[int, int, float]]:
        now = self.store.clock.now()
        values = {kind: (0, 0, 0.0) for kind in KINDS}
        for rec in self.table.all():
            total, behind, lag = values.get(_kind(rec.url), (0, 0, 0.0))
            values[_kind(rec.url)] = (
                total + 1,
                behind + rec.behind,
                max(lag, rec.lag_seconds(now)),
            )
        return values

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                self._values = self._read()
                self._at = time.monotonic()
            values = dict(self._values)
        total = GaugeMetricFamily(METRICS[0], "Sinks configured.", labels=["kind"])
        behind = GaugeMetricFamily(
            METRICS[1], "Sinks holding an older token than the current one.", labels=["kind"]
        )
        lag = GaugeMetricFamily(
            METRICS[2], "Longest time a sink of this kind has been behind.", labels=["kind"]
        )
        for kind, (n, b, seconds) in sorted(values.items()):
            total.add_metric([kind], n)
            behind.add_metric([kind], b)
            lag.add_metric([kind], round(seconds, 3))
        yield total
        yield behind
        yield lag


__all__ = ["METRICS", "SinkLagCollector"]
