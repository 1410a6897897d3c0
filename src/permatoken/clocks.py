"""Clocks built from settings: the system clock, or one that follows the sandbox's clock.

Kept apart from :mod:`permatoken.service` so that the store can build its clock without importing
the engine (which imports the store).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx

from ._exceptions import ConfigError
from .settings import Settings
from .timeutil import Clock, SystemClock

__all__ = ["SandboxFollowingClock", "build_clock"]


class SandboxFollowingClock:
    """Follows the sandbox's clock (``GET /_sandbox/clock``), so that permatoken and the
    imitation of Meta agree on "now" when a test or the demo travels in time.

    The offset is re-read at most every ``refresh`` seconds; between reads time flows normally.
    """

    def __init__(self, graph_url: str, *, refresh: float = 0.5) -> None:
        self.url = graph_url.rstrip("/") + "/_sandbox/clock"
        self.refresh = refresh
        self._offset = 0.0
        self._read_at = -1e9
        self._lock = threading.Lock()
        self._sync()

    def _sync(self) -> None:
        try:
            data = httpx.get(self.url, timeout=5.0).json()
            self._offset = float(data["now"]) - time.time()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"PERMATOKEN_CLOCK=sandbox but the sandbox clock at {self.url} cannot be read",
                hint="start `permatoken sandbox` and point PERMATOKEN_GRAPH_URL at it",
            ) from exc
        self._read_at = time.monotonic()

    def now(self) -> datetime:
        if time.monotonic() - self._read_at > self.refresh:
            with self._lock:
                if time.monotonic() - self._read_at > self.refresh:
                    try:
                        self._sync()
                    except ConfigError:
                        pass  # keep the last known offset while the sandbox restarts
        return datetime.fromtimestamp(time.time() + self._offset, UTC)


def build_clock(settings: Settings) -> Clock:
    if settings.clock == "sandbox":
        return SandboxFollowingClock(settings.graph_url)
    return SystemClock()
