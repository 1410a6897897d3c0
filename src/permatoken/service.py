"""Builds the long-lived parts (clock, store, Graph client, renewal engine) from settings."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx

from ._exceptions import ConfigError
from .meta.graph import GraphClient
from .rotation import RenewalEngine
from .settings import Settings
from .store import Store
from .timeutil import Clock, SystemClock


class SandboxClock:
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
        return SandboxClock(settings.graph_url)
    return SystemClock()


def build_graph(settings: Settings, clock: Clock | None = None) -> GraphClient:
    if clock is None:
        return GraphClient(settings.graph_url, settings.graph_version)
    return GraphClient(
        settings.graph_url, settings.graph_version, clock=lambda: clock.now().timestamp()
    )


def build_engine(settings: Settings, store: Store, *, clock: Clock | None = None) -> RenewalEngine:
    from .scheduler.policies import PolicyLayers

    clock = clock or store.clock
    graph = build_graph(settings, clock)
    layers = PolicyLayers(settings, store)
    return RenewalEngine(
        store,
        graph,
        clock=clock,
        lease_ttl=settings.lease_ttl,
        policy_resolver=layers.for_credential,
    )
