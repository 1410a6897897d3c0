"""In-memory backends and tokens for unit tests of the token sources (no network, no store)."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio

from permatoken._secret import Secret
from permatoken.client import CachedToken, ReportAnswer


def token(
    version: int, name: str = "acme/messaging", *, expires_in: float | None = None
) -> CachedToken:
    from datetime import UTC, datetime, timedelta

    expires = datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in is not None else None
    return CachedToken(name, version, Secret(f"EAAfake{version:04d}" + "x" * 40), expires)


class FakeBackend:
    """A blocking backend: ``rotate()`` makes a new version; reports are counted and slowed."""

    def __init__(self, *, report_status: str = "renewed", report_delay: float = 0.05) -> None:
        self.version = 1
        self.feed_version = 1  # what the change feed announces (rotate() moves both)
        self.reports: list[int] = []
        self.fetches = 0
        self.report_status = report_status
        self.report_delay = report_delay
        self.fail_fetches = 0  # how many next feed calls raise
        self.closed = False
        self._cond = threading.Condition()

    def rotate(self) -> None:
        with self._cond:
            self.version += 1
            self.feed_version = self.version
            self._cond.notify_all()

    def _maybe_fail(self) -> None:
        if self.fail_fetches > 0:
            self.fail_fetches -= 1
            from permatoken.client import BrokerUnavailableError

            raise BrokerUnavailableError("cannot reach the permatoken broker at http://fake (test)")

    def fetch(self) -> CachedToken:
        self.fetches += 1
        self._maybe_fail()
        return token(self.version)

    def wait_for_change(self, after_version: int, timeout: float) -> CachedToken | None:
        self._maybe_fail()
        with self._cond:
            self._cond.wait_for(
                lambda: self.feed_version > after_version, timeout=min(timeout, 0.05)
            )
            return token(self.feed_version) if self.feed_version > after_version else None

    def report(self, version: int, code: int | None, subcode: int | None) -> ReportAnswer:
        self.reports.append(version)
        time.sleep(self.report_delay)
        if self.report_status == "renewed" and self.version == version:
            self.rotate()
        return ReportAnswer(self.report_status, self.version, None, "fake")

    def close(self) -> None:
        self.closed = True


class AsyncFakeBackend:
    """The same fake driven from async code (reports sleep with anyio)."""

    def __init__(self, **kwargs: Any) -> None:
        self.sync = FakeBackend(**kwargs)

    async def fetch(self) -> CachedToken:
        return self.sync.fetch()

    async def wait_for_change(self, after_version: int, timeout: float) -> CachedToken | None:
        self.sync._maybe_fail()
        await anyio.sleep(min(timeout, 0.05))
        return token(self.sync.version) if self.sync.version > after_version else None

    async def report(self, version: int, code: int | None, subcode: int | None) -> ReportAnswer:
        self.sync.reports.append(version)
        await anyio.sleep(self.sync.report_delay)
        if self.sync.report_status == "renewed" and self.sync.version == version:
            self.sync.rotate()
        return ReportAnswer(self.sync.report_status, self.sync.version, None, "fake")

    async def aclose(self) -> None:
        self.sync.closed = True
