"""A short-lived cache of the overview's fleet-wide parts (counts by health, per-day series).

Those scan every credential a filter matches (an index scan, but still one entry per
credential); a page of rows does not. Kept ``ui.summary_ttl`` seconds (default 10) per
(grants, filter), so a busy dashboard over 100,000 credentials costs about what it costs over
100; the rows on the page, and the live updates, are always read fresh. Thread-safe (pages
compute in the thread pool); two threads missing at once may both compute, harmlessly.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ..store.ui_queries import Summary


class SummaryCache:
    def __init__(self, ttl: float, *, max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Summary]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Summary]) -> Summary:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                self._entries.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


__all__ = ["SummaryCache"]
