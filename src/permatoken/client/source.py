"""Token sources: one credential's current token in memory, kept fresh in the background.

``current()`` is the hot path: it reads one attribute holding an immutable
:class:`CachedToken`, which writers replace whole. No I/O, no lock. A background watcher (a
daemon thread for :class:`TokenSource`, a task for :class:`AsyncTokenSource`) waits on the
change feed (the broker's long poll, or the local store) and refreshes ahead of expiry. While
the feed is down the cached token keeps being served; the watcher reconnects with capped
backoff and logs once per outage.

``report_dead(version, …)`` is single-flight per version: concurrent callers that saw the same
version die share one report and get the same next version. A failed recovery is remembered for
``failure_ttl`` seconds so that a storm of callers does not repeat it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._exceptions import PermatokenError
from ._core import SourceCore
from .models import CachedToken, ReportAnswer

if TYPE_CHECKING:
    from ..settings import Settings
    from .embedded import EmbeddedBackend

__all__ = ["AsyncTokenSource", "TokenSource"]

log = logging.getLogger(__name__)


class TokenSource(SourceCore):
    """Synchronous token source; build it with :meth:`from_broker` or :meth:`embedded`.

    The constructor loads the token (raising a typed error if it cannot) and starts the
    watcher thread. Thread-safe. ``close()`` stops the watcher.
    """

    def __init__(self, backend: Any, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._backend = backend
        self._closed = threading.Event()
        self._flight_lock = threading.Lock()
        self._flights: dict[int, concurrent.futures.Future[CachedToken]] = {}
        try:
            self._offer(backend.fetch())
        except BaseException:
            backend.close()
            raise
        self._thread = threading.Thread(
            target=self._watch, name=f"permatoken-source:{name}", daemon=True
        )
        self._thread.start()

    @classmethod
    def from_broker(
        cls, url: str, api_key: str | Any, name: str, *, transport: Any = None, **options: Any
    ) -> TokenSource:
        """A source reading ``name`` from a permatoken broker with an app API key."""
        from .broker import BrokerClient

        return cls(
            _BrokerBackend(BrokerClient(url, api_key, transport=transport), name), name, **options
        )

    @classmethod
    def embedded(
        cls,
        name: str,
        settings: Settings | None = None,
        *,
        store: Any = None,
        engine: Any = None,
        poll_interval: float = 0.5,
        **options: Any,
    ) -> TokenSource:
        """A source reading ``name`` from the local store; reports go through the renewal engine."""
        from .embedded import EmbeddedBackend

        backend = EmbeddedBackend(
            name, settings, store=store, engine=engine, poll_interval=poll_interval
        )
        return cls(backend, name, **options)

    def refresh(self) -> CachedToken:
        """Ask the backend now; returns the (possibly unchanged) cached token."""
        self._offer(self._backend.fetch())
        return self.current()

    def report_dead(
        self, version: int, code: int | None = None, subcode: int | None = None
    ) -> CachedToken:
        """Report that ``version`` got a dead-token error; return the next version to use."""
        newer = self._newer_than(version)
        if newer is not None:
            return newer
        with self._flight_lock:
            failure = self._recent_failure(version)
            if failure is not None:
                raise failure
            flight = self._flights.get(version)
            leader = flight is None
            if flight is None:
                flight = self._flights[version] = concurrent.futures.Future()
        if not leader:
            return flight.result()
        try:
            token = self._recover(version, code, subcode)
        except BaseException as exc:
            with self._flight_lock:
                self._remember_failure(version, exc)
                del self._flights[version]
            flight.set_exception(exc)
            raise
        with self._flight_lock:
            del self._flights[version]
        flight.set_result(token)
        return token

    def _recover(self, version: int, code: int | None, subcode: int | None) -> CachedToken:
        answer: ReportAnswer = self._backend.report(version, code, subcode)
        token = self._accept(answer, version)
        if token is not None:
            return token
        deadline = time.monotonic() + self.busy_wait
        fresh = self._backend.fetch() if answer.recovered else None
        while True:
            if fresh is not None:
                self._offer(fresh)
            newer = self._newer_than(version)
            if newer is not None:
                return newer
            left = deadline - time.monotonic()
            if left <= 0 or self._closed.is_set():
                raise self._gave_up(version, answer.status)
            fresh = self._backend.wait_for_change(version, min(5.0, left))

    def _watch(self) -> None:
        while not self._closed.is_set():
            fetch_now, wait = self._plan()
            token = self._token
            try:
                if fetch_now:
                    fresh = self._backend.fetch()
                else:
                    fresh = self._backend.wait_for_change(token.version if token else 0, wait)
            except PermatokenError as exc:
                if self._closed.is_set():
                    return
                self._closed.wait(self._feed_failed(exc))
                continue
            except Exception as exc:  # never let the watcher die
                if self._closed.is_set():
                    return
                log.exception("%s: unexpected error in the token watcher", self.name)
                self._closed.wait(self._feed_failed(exc))
                continue
            self._feed_ok()
            if fresh is not None:
                self._offer(fresh)
            if fetch_now and (fresh is None or self._token is token):
                self._closed.wait(wait)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2.0)
        self._backend.close()

    def __enter__(self) -> TokenSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _BrokerBackend:
    """Adapts :class:`BrokerClient` to the backend shape the sources use."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name

    def fetch(self) -> CachedToken:
        token = self.client.get_token(self.name)
        if token is None:
            from .errors import BrokerProtocolError

            raise BrokerProtocolError(f"the broker answered 304 to a plain read of {self.name!r}")
        return token  # type: ignore[no-any-return]

    def wait_for_change(self, after_version: int, timeout: float) -> CachedToken | None:
        return self.client.get_token(self.name, after_version=after_version, wait=timeout)  # type: ignore[no-any-return]

    def report(self, version: int, code: int | None, subcode: int | None) -> ReportAnswer:
        return self.client.report(self.name, version, code, subcode)  # type: ignore[no-any-return]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class _Flight:
    """One in-flight async recovery that later callers for the same version wait on."""

    __slots__ = ("done", "error", "token")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.token: CachedToken | None = None
        self.error: BaseException | None = None


class AsyncTokenSource(SourceCore):
    """Asynchronous token source; build it with :meth:`from_broker` or :meth:`embedded`.

    Start it with ``async with source:`` (or ``await source.start()`` and ``await
    source.aclose()`` from the same task): that loads the token and starts the watcher task.
    ``current()`` stays a plain, synchronous memory read.
    """

    def __init__(self, backend: Any, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._backend = backend
        self._flights: dict[int, _Flight] = {}
        self._tg: Any = None

    @classmethod
    def from_broker(
        cls, url: str, api_key: str | Any, name: str, *, transport: Any = None, **options: Any
    ) -> AsyncTokenSource:
        from .broker import AsyncBrokerClient

        return cls(
            _AsyncBrokerBackend(AsyncBrokerClient(url, api_key, transport=transport), name),
            name,
            **options,
        )

    @classmethod
    def embedded(
        cls,
        name: str,
        settings: Settings | None = None,
        *,
        store: Any = None,
        engine: Any = None,
        poll_interval: float = 0.5,
        **options: Any,
    ) -> AsyncTokenSource:
        """Local store; blocking store and engine calls run in worker threads."""
        from .embedded import EmbeddedBackend

        backend = EmbeddedBackend(
            name, settings, store=store, engine=engine, poll_interval=poll_interval
        )
        return cls(_ThreadedBackend(backend), name, **options)

    async def start(self) -> AsyncTokenSource:
        """Load the token (typed error if impossible) and start the watcher task."""
        if self._token is None:
            self._offer(await self._backend.fetch())
        if self._tg is None:
            tg = anyio.create_task_group()
            await tg.__aenter__()
            self._tg = tg
            tg.start_soon(self._watch)
        return self

    async def get(self) -> CachedToken:
        """``current()``, loading the token first if the source was never started."""
        token = self._token
        if token is None:
            self._offer(await self._backend.fetch())
            return self.current()
        return token

    async def refresh(self) -> CachedToken:
        self._offer(await self._backend.fetch())
        return self.current()

    async def report_dead(
        self, version: int, code: int | None = None, subcode: int | None = None
    ) -> CachedToken:
        """Report that ``version`` got a dead-token error; return the next version to use."""
        newer = self._newer_than(version)
        if newer is not None:
            return newer
        failure = self._recent_failure(version)
        if failure is not None:
            raise failure
        flight = self._flights.get(version)
        if flight is not None:
            await flight.done.wait()
            if flight.token is None:
                raise flight.error or self._gave_up(version, "cancelled")
            return flight.token
        flight = self._flights[version] = _Flight()
        try:
            flight.token = await self._recover(version, code, subcode)
            return flight.token
        except BaseException as exc:
            flight.error = (
                exc if isinstance(exc, Exception) else self._gave_up(version, "cancelled")
            )
            if isinstance(exc, Exception):
                self._remember_failure(version, exc)
            raise
        finally:
            del self._flights[version]
            flight.done.set()

    async def _recover(self, version: int, code: int | None, subcode: int | None) -> CachedToken:
        answer: ReportAnswer = await self._backend.report(version, code, subcode)
        token = self._accept(answer, version)
        if token is not None:
            return token
        deadline = time.monotonic() + self.busy_wait
        fresh = await self._backend.fetch() if answer.recovered else None
        while True:
            if fresh is not None:
                self._offer(fresh)
            newer = self._newer_than(version)
            if newer is not None:
                return newer
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._gave_up(version, answer.status)
            fresh = await self._backend.wait_for_change(version, min(5.0, left))

    async def _watch(self) -> None:
        while True:
            fetch_now, wait = self._plan()
            token = self._token
            try:
                if fetch_now:
                    fresh = await self._backend.fetch()
                else:
                    fresh = await self._backend.wait_for_change(token.version if token else 0, wait)
            except PermatokenError as exc:
                await anyio.sleep(self._feed_failed(exc))
                continue
            except Exception as exc:  # never let the watcher die
                log.exception("%s: unexpected error in the token watcher", self.name)
                await anyio.sleep(self._feed_failed(exc))
                continue
            self._feed_ok()
            if fresh is not None:
                self._offer(fresh)
            if fetch_now and (fresh is None or self._token is token):
                await anyio.sleep(wait)

    async def aclose(self) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        await self._backend.aclose()

    async def __aenter__(self) -> AsyncTokenSource:
        try:
            return await self.start()
        except BaseException:
            await self.aclose()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _AsyncBrokerBackend:
    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name

    async def fetch(self) -> CachedToken:
        token = await self.client.get_token(self.name)
        if token is None:
            from .errors import BrokerProtocolError

            raise BrokerProtocolError(f"the broker answered 304 to a plain read of {self.name!r}")
        return token  # type: ignore[no-any-return]

    async def wait_for_change(self, after_version: int, timeout: float) -> CachedToken | None:
        return await self.client.get_token(self.name, after_version=after_version, wait=timeout)  # type: ignore[no-any-return]

    async def report(self, version: int, code: int | None, subcode: int | None) -> ReportAnswer:
        return await self.client.report(self.name, version, code, subcode)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()


class _ThreadedBackend:
    """A blocking backend (the local store and engine) driven from async code via threads."""

    def __init__(self, backend: EmbeddedBackend) -> None:
        self.backend = backend

    async def fetch(self) -> CachedToken:
        return await anyio.to_thread.run_sync(self.backend.fetch)

    async def wait_for_change(self, after_version: int, timeout: float) -> CachedToken | None:
        return await anyio.to_thread.run_sync(
            self.backend.wait_for_change, after_version, timeout, abandon_on_cancel=True
        )

    async def report(self, version: int, code: int | None, subcode: int | None) -> ReportAnswer:
        return await anyio.to_thread.run_sync(self.backend.report, version, code, subcode)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.backend.close)
