"""Change notifications: who is waiting for which credential, and how rotations reach them.

Three sources feed :meth:`ChangeHub.publish`:

- the engine's promotions (``engine.events.subscribe_promotions``) for rotations done by this
  process (called from a worker thread);
- PostgreSQL ``LISTEN permatoken_versions`` on a dedicated async connection, for every replica;
- a poll of the ``events`` table (every second by default), which also catches rotations by
  other processes on SQLite, revocations and removals, and anything missed while the LISTEN
  connection was down.

A version is announced once per replica even when several sources report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from ..events import EventKind
from ..store import Store
from ..store.event_feed import events_between, newest_event_id
from ..store.listen import PostgresListener
from .cache import TokenCache

log = logging.getLogger("permatoken.server.changes")

_WATCHED_KINDS = (
    EventKind.VERSION_PROMOTED,
    EventKind.VERSION_REVOKED,
    EventKind.VERSION_RETIRED,
    EventKind.CREDENTIAL_REMOVED,
    EventKind.HEALTH_CHANGED,
)


@dataclass(eq=False)
class Subscriber:
    """One SSE stream: receives (name, version) for the names its filter accepts."""

    accepts: Callable[[str], bool]
    queue: asyncio.Queue[tuple[str, int] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=10_000)
    )


class ChangeHub:
    def __init__(
        self, cache: TokenCache, *, on_promoted: Callable[[str, int], None] | None = None
    ) -> None:
        """``on_promoted(name, version)`` is told of every announced promotion (metrics)."""
        self.cache = cache
        self.loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subscribers: set[Subscriber] = set()
        self._seen: dict[str, int] = {}
        self.on_promoted = on_promoted

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # --- sources --------------------------------------------------------------------------
    def publish_threadsafe(self, name: str, version: int) -> None:
        """A promotion listener on the engine's event bus (called on a worker thread)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.publish, name, version)

    def changed_threadsafe(self, name: str) -> None:
        """For worker threads (the webhook handler): ``changed`` on the loop."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.changed, name)

    def publish(self, name: str, version: int) -> None:
        if version <= self._seen.get(name, 0):
            return
        self._seen[name] = version
        self.cache.invalidate(name)
        self._wake(name)
        for sub in list(self._subscribers):
            if sub.accepts(name):
                if sub.queue.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        sub.queue.get_nowait()
                sub.queue.put_nowait((name, version))
        if self.on_promoted is not None:
            self.on_promoted(name, version)

    def changed(self, name: str, *, removed: bool = False) -> None:
        """Something other than a promotion changed ``name`` (revoked, removed)."""
        self.cache.invalidate(name)
        if removed:
            self._seen.pop(name, None)
        self._wake(name)

    def resync(self) -> None:
        """Notifications may have been missed: drop every cached token, wake every waiter."""
        self.cache.clear()
        for name in list(self._waiters):
            self._wake(name)

    def close(self) -> None:
        """Shutting down: wake waiters, end streams."""
        for name in list(self._waiters):
            self._wake(name)
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

    # --- sinks ------------------------------------------------------------------------------
    def watch(self, name: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, set()).add(fut)
        return fut

    def unwatch(self, name: str, fut: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(name)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                self._waiters.pop(name, None)

    def subscribe(self, accepts: Callable[[str], bool]) -> Subscriber:
        sub = Subscriber(accepts)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def _wake(self, name: str) -> None:
        for fut in self._waiters.pop(name, ()):
            if not fut.done():
                fut.set_result(None)


class EventsPoller:
    """Reads new rows of the ``events`` table and announces what they change."""

    def __init__(self, store: Store, hub: ChangeHub, *, interval: float = 1.0) -> None:
        self.store = store
        self.hub = hub
        self.interval = interval
        self.last_id: int | None = None

    def _fetch(self) -> list[tuple[int, str | None, str, object]]:
        with self.store.read() as conn:
            top = newest_event_id(conn)
            if self.last_id is None:
                self.last_id = top
                return []
            rows = events_between(conn, self.last_id, top, _WATCHED_KINDS)
        self.last_id = max(self.last_id, top)
        return rows

    def apply(self, rows: list[tuple[int, str | None, str, object]]) -> None:
        for _id, name, kind, detail in rows:
            if not name:
                continue
            if (
                kind == EventKind.VERSION_PROMOTED
                and isinstance(detail, dict)
                and isinstance(detail.get("version"), int)
            ):
                self.hub.publish(name, detail["version"])
            else:
                self.hub.changed(name, removed=kind == EventKind.CREDENTIAL_REMOVED)

    async def run(self) -> None:
        while True:
            try:
                self.apply(await run_in_threadpool(self._fetch))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("events poll failed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)


__all__ = ["ChangeHub", "EventsPoller", "PostgresListener", "Subscriber"]
