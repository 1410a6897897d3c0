"""Token sources: memory reads, single-flight reports, background refresh, outages."""

from __future__ import annotations

import logging
import threading
import time

import anyio
import pytest

from permatoken.client import (
    AsyncTokenSource,
    RecoveryFailedError,
    SourceNotStartedError,
    TokenSource,
)

from ._fakes import AsyncFakeBackend, FakeBackend, token


def test_current_is_a_memory_read_without_backend_calls():
    """current() never reaches the backend, however often it is called."""
    backend = FakeBackend()
    with TokenSource(backend, "acme/messaging", poll_wait=60) as source:
        before = backend.fetches
        for _ in range(10_000):
            assert source.current().version == 1
        assert backend.fetches == before


def test_concurrent_dead_reports_of_one_version_share_one_report():
    """50 threads reporting version 1 dead make one report and all get version 2."""
    backend = FakeBackend(report_delay=0.2)
    with TokenSource(backend, "acme/messaging") as source:
        got: list[int] = []
        barrier = threading.Barrier(50)

        def worker() -> None:
            barrier.wait()
            got.append(source.report_dead(1, 190, 466).version)

        threads = [threading.Thread(target=worker) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert backend.reports == [1]
    assert got == [2] * 50


def test_a_report_for_an_old_version_is_answered_from_the_cache():
    """Once version 2 is cached, reporting version 1 makes no call at all."""
    backend = FakeBackend()
    with TokenSource(backend, "acme/messaging") as source:
        assert source.report_dead(1).version == 2
        assert source.report_dead(1).version == 2
    assert backend.reports == [1]


def test_a_failed_recovery_is_shared_and_remembered_briefly():
    """needs_human: every caller gets RecoveryFailedError, and the storm makes one report."""
    backend = FakeBackend(report_status="needs_human", report_delay=0.1)
    with TokenSource(backend, "acme/messaging", failure_ttl=5) as source:
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                source.report_dead(1, 190)
            except RecoveryFailedError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with pytest.raises(RecoveryFailedError) as caught:
            source.report_dead(1, 190)
    assert len(errors) == 20
    assert caught.value.status == "needs_human"
    assert backend.reports == [1]


def test_the_watcher_picks_up_a_rotation_quickly():
    """A new version on the feed is cached within a second; current() never fails meanwhile."""
    backend = FakeBackend()
    with TokenSource(backend, "acme/messaging") as source:
        seen: list[int] = []
        source.on_change(lambda t: seen.append(t.version))
        backend.rotate()
        deadline = time.monotonic() + 1.0
        while source.current().version != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.current().version == 2
    assert seen == [2]


def test_an_outage_serves_the_cached_token_and_is_logged_once(caplog: pytest.LogCaptureFixture):
    """Ten failing feed calls in a row: one warning, the cached token stays, recovery is logged."""
    caplog.set_level(logging.INFO, logger="permatoken.client.source")
    backend = FakeBackend()
    with TokenSource(backend, "acme/messaging", max_backoff=0.02) as source:
        backend.fail_fetches = 10
        deadline = time.monotonic() + 5
        while backend.fail_fetches and time.monotonic() < deadline:
            assert source.current().version == 1
            time.sleep(0.01)
        backend.rotate()
        while source.current().version != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.current().version == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "serving cached version 1" in warnings[0].getMessage()
    assert any("back after" in r.getMessage() for r in caplog.records)


def test_refresh_ahead_of_expiry_fetches_before_the_token_dies():
    """A token inside the refresh margin is re-fetched by the watcher (no feed event needed)."""
    backend = FakeBackend()
    with TokenSource(backend, "acme/messaging", refresh_margin=3600) as source:
        source._token = token(1, expires_in=60)  # expiring soon: inside the margin
        before = backend.fetches
        backend.version = 2  # a newer version exists, but the feed does not announce it
        deadline = time.monotonic() + 2
        while source.current().version != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.current().version == 2 and backend.fetches > before


def test_a_backend_that_cannot_load_is_closed_and_the_error_raised():
    """The constructor raises the typed error and releases the backend."""
    backend = FakeBackend()
    backend.fail_fetches = 1
    from permatoken.client import BrokerUnavailableError

    with pytest.raises(BrokerUnavailableError):
        TokenSource(backend, "acme/messaging")
    assert backend.closed


@pytest.mark.anyio
async def test_async_concurrent_dead_reports_share_one_report():
    """1,000 tasks reporting version 1 dead make one report and all get version 2."""
    backend = AsyncFakeBackend(report_delay=0.1)
    async with AsyncTokenSource(backend, "acme/messaging") as source:
        got: list[int] = []

        async def worker() -> None:
            got.append((await source.report_dead(1, 190)).version)

        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(worker)
    assert backend.sync.reports == [1]
    assert got == [2] * 1000


@pytest.mark.anyio
async def test_async_failed_recovery_reaches_every_waiter():
    """An async storm on a version that cannot recover: one report, every caller gets the error."""
    backend = AsyncFakeBackend(report_status="failed", report_delay=0.05)
    async with AsyncTokenSource(backend, "acme/messaging") as source:
        errors = 0

        async def worker() -> None:
            nonlocal errors
            try:
                await source.report_dead(1, 190)
            except RecoveryFailedError:
                errors += 1

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(worker)
    assert errors == 100 and backend.sync.reports == [1]


@pytest.mark.anyio
async def test_async_source_must_be_started_before_current():
    """current() before start() is a typed error that says what to do; get() loads lazily."""
    backend = AsyncFakeBackend()
    source = AsyncTokenSource(backend, "acme/messaging")
    with pytest.raises(SourceNotStartedError, match="has not loaded"):
        source.current()
    assert (await source.get()).version == 1
    await source.aclose()
    assert backend.sync.closed


@pytest.mark.anyio
async def test_async_watcher_follows_rotations():
    """The async watcher caches a rotation within a second."""
    backend = AsyncFakeBackend()
    async with AsyncTokenSource(backend, "acme/messaging") as source:
        backend.sync.rotate()
        with anyio.fail_after(1.0):
            while source.current().version != 2:
                await anyio.sleep(0.01)
