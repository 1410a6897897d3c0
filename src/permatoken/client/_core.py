"""Shared state and decisions of the sync and async token sources (no I/O).

See :mod:`permatoken.client.source` for the behaviour; this module only decides: which token is
newer, when to refresh ahead of expiry, what a report answer means, and how long to back off.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from ..vocabulary import ReportStatus
from .errors import RecoveryFailedError, SourceNotStartedError
from .models import CachedToken, ReportAnswer

__all__ = ["Backoff", "SourceCore"]

log = logging.getLogger("permatoken.client.source")


class Backoff:
    """Capped exponential backoff with jitter (half to full delay)."""

    def __init__(self, first: float = 0.2, cap: float = 10.0) -> None:
        self.first, self.cap = first, cap
        self._delay = first

    def next(self) -> float:
        delay = self._delay
        self._delay = min(self.cap, delay * 2)
        return delay * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self._delay = self.first


class SourceCore:
    """State and decisions shared by the sync and async sources (no I/O here)."""

    def __init__(
        self,
        name: str,
        *,
        poll_wait: float = 25.0,
        refresh_margin: float = 300.0,
        max_backoff: float = 10.0,
        failure_ttl: float = 5.0,
        busy_wait: float = 60.0,
    ) -> None:
        self.name = name
        self.poll_wait = poll_wait
        self.refresh_margin = refresh_margin
        self.failure_ttl = failure_ttl
        self.busy_wait = busy_wait
        self._token: CachedToken | None = None
        self._swap = threading.Lock()  # writers only; readers never take it
        self._listeners: list[Callable[[CachedToken], None]] = []
        self._failures: dict[int, tuple[float, BaseException]] = {}
        self._backoff = Backoff(cap=max_backoff)
        self._down_since: float | None = None

    def __repr__(self) -> str:
        token = self._token
        return (
            f"{type(self).__name__}(name={self.name!r}, version={token.version if token else None})"
        )

    def current(self) -> CachedToken:
        """The cached token: a memory read, safe from any thread, never blocks."""
        token = self._token
        if token is None:
            raise SourceNotStartedError(
                f"the token source for {self.name!r} has not loaded a token yet", name=self.name
            )
        return token

    def on_change(self, callback: Callable[[CachedToken], None]) -> None:
        """Call ``callback(token)`` after every newer version is cached (from the watcher)."""
        self._listeners.append(callback)

    def _offer(self, token: CachedToken) -> bool:
        """Cache ``token`` if it is newer than what is cached; tell listeners."""
        with self._swap:
            cached = self._token
            if cached is not None and token.version <= cached.version:
                return False
            self._token = token
        if cached is not None:
            log.info("%s: now using version %d (was %d)", self.name, token.version, cached.version)
        for callback in list(self._listeners):
            try:
                callback(token)
            except Exception:
                log.exception("%s: a token-change listener failed", self.name)
        return True

    def _newer_than(self, version: int) -> CachedToken | None:
        token = self._token
        return token if token is not None and token.version > version else None

    def _plan(self) -> tuple[bool, float]:
        """(fetch now?, how long to wait on the feed) from the cached token's expiry."""
        token = self._token
        left = token.expires_in() if token is not None else None
        if left is None:
            return False, self.poll_wait
        ahead = left - self.refresh_margin
        if ahead <= 0:
            return True, min(self.poll_wait, 30.0)
        return False, max(0.05, min(self.poll_wait, ahead))

    def _recent_failure(self, version: int) -> BaseException | None:
        entry = self._failures.get(version)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._failures.pop(version, None)
            return None
        return entry[1]

    def _remember_failure(self, version: int, exc: BaseException) -> None:
        self._failures[version] = (time.monotonic() + self.failure_ttl, exc)

    def _accept(self, answer: ReportAnswer, version: int) -> CachedToken | None:
        """The next token from a report answer, None to fetch or wait, or raise (pure)."""
        if answer.token is not None and answer.token.version > version:
            self._offer(answer.token)
        newer = self._newer_than(version)
        if newer is not None:
            return newer
        if answer.recovered or answer.status == ReportStatus.BUSY:
            return None
        said = f": {answer.message}" if answer.message else ""
        raise RecoveryFailedError(
            f"{self.name} version {version} was reported dead and no newer version came back "
            f"(status {answer.status}{said})",
            name=self.name,
            version=version,
            status=answer.status,
        )

    def _gave_up(self, version: int, status: str) -> RecoveryFailedError:
        return RecoveryFailedError(
            f"{self.name} version {version} was reported dead; no newer version appeared within "
            f"{self.busy_wait:g} s (status {status})",
            name=self.name,
            version=version,
            status=status,
        )

    def _feed_failed(self, exc: BaseException) -> float:
        if self._down_since is None:
            self._down_since = time.monotonic()
            token = self._token
            log.warning(
                "%s: change feed down (%s); serving cached version %s, retrying in background",
                self.name,
                exc,
                token.version if token else None,
            )
        return self._backoff.next()

    def _feed_ok(self) -> None:
        if self._down_since is not None:
            log.info(
                "%s: change feed back after %.1f s", self.name, time.monotonic() - self._down_since
            )
            self._down_since = None
        self._backoff.reset()
