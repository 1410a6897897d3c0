"""Open long-polls and streams per API key, ended the moment the key stops being valid.

A long-poll or an SSE stream outlives the authentication at its start. Each one registers a
:class:`Session`; its ``ended`` future resolves with a reason (``revoked``, ``expired``) and
the request then answers 401 (long-poll) or sends ``event: error`` and closes (stream) instead of
delivering anything more.

- Revoked through this replica's API: :meth:`KeySessions.end` runs before the revocation is
  answered, so no later promotion reaches the key here.
- Expiry: a timer per session fires at the key's ``expires_at``.
- Revoked elsewhere (another replica, ``permatoken keys revoke``): :meth:`KeySessions.run` re-reads
  the keys that have open sessions every ``recheck`` seconds (the key-cache TTL, default 5), one
  query for all of them, so those sessions end within that time.

Everything here runs on the event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..access import ApiKey, Principal
from ..store.apikeys import KeyStore
from .errors import ApiError

log = logging.getLogger("permatoken.server.sessions")

MESSAGES = {"revoked": "this API key was revoked", "expired": "this API key has expired"}


class Session:
    __slots__ = ("ended", "key_id", "timer")

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None

    def check(self) -> None:
        """401 if the key stopped being valid while this request was open."""
        if self.ended.done():
            raise ended_error(self.ended.result())


def ended_error(reason: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        MESSAGES.get(reason, "this API key is no longer valid"),
        headers={"WWW-Authenticate": "Bearer"},
    )


class KeySessions:
    def __init__(
        self,
        keys: KeyStore,
        *,
        recheck: float = 5.0,
        on_end: Callable[[str, str], None] | None = None,
    ) -> None:
        """``on_end(key id, reason)`` is told when the sessions of a key are ended (so the key
        is forgotten by the authenticator's cache)."""
        self.keys = keys
        self.recheck = recheck
        self._open: dict[str, set[Session]] = {}
        # Keys ended here (revocation is final): a request that authenticated just before the
        # revocation but opens its session just after must not slip through.
        self._ended: dict[str, str] = {}
        self.on_end = on_end

    def __len__(self) -> int:
        return sum(len(s) for s in self._open.values())

    @contextlib.contextmanager
    def open(self, p: Principal) -> Iterator[Session]:
        session = Session(p.key_id)
        if p.key_id in self._ended:
            session.ended.set_result(self._ended[p.key_id])
        self._open.setdefault(p.key_id, set()).add(session)
        if p.expires_at is not None:
            delay = (p.expires_at - datetime.now(UTC)).total_seconds()
            loop = asyncio.get_running_loop()
            session.timer = loop.call_later(max(0.0, delay), self.end, p.key_id, "expired")
        try:
            yield session
        finally:
            if session.timer is not None:
                session.timer.cancel()
            sessions = self._open.get(p.key_id)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._open[p.key_id]

    def end(self, key_id: str, reason: str) -> int:
        """End every open session of ``key_id``; returns how many there were."""
        if len(self._ended) >= 100_000:
            self._ended.clear()
        self._ended[key_id] = reason
        sessions = self._open.get(key_id, set())
        for s in sessions:
            if not s.ended.done():
                s.ended.set_result(reason)
        if self.on_end is not None:
            self.on_end(key_id, reason)
        return len(sessions)

    async def sweep(self) -> None:
        """Re-read the keys with open sessions; end those revoked, expired or removed."""
        ids = list(self._open)
        if not ids:
            return
        found: dict[str, ApiKey] = await run_in_threadpool(self.keys.by_ids, ids)
        now = datetime.now(UTC)
        for key_id in ids:
            key = found.get(key_id)
            if key is None or key.revoked_at is not None:
                self.end(key_id, "revoked")
            elif not key.usable_at(now):
                self.end(key_id, "expired")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.recheck)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next sweep tries again; the key cache still expires
                log.warning("API key re-check failed: %s", type(exc).__name__)


async def first(session: Session, waitable: Any, timeout: float | None) -> Any:
    """Await ``waitable`` (a future or task), the end of ``session``, or ``timeout``.

    Returns the waitable's result, None on timeout; raises 401 if the session ended first.
    The waitable is left running when it did not finish (the caller owns it).
    """
    done, _ = await asyncio.wait(
        {session.ended, waitable}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    if session.ended in done:
        session.check()
    if waitable in done:
        return waitable.result()
    return None


async def rotation_events(
    session: Session,
    queue: asyncio.Queue[tuple[str, int] | None],
    *,
    keepalive: float,
    closing: Callable[[], bool],
    ended: Callable[[ApiError], str],
    idle: Callable[[], Awaitable[str | None]] | None = None,
) -> AsyncIterator[str]:
    """The server-sent events of one open stream (the API's ``/v1/stream``, the dashboard's live
    updates): a ``rotation`` event per ``(name, version)`` from ``queue`` (None ends the stream),
    a keep-alive every ``keepalive`` seconds, and ``ended(exc)`` as the last event when the key's
    session ends (revoked, expired). ``idle()``, asked at each keep-alive, may end the stream
    with the event it returns. The caller subscribes and unsubscribes ``queue``."""
    getter: asyncio.Future[tuple[str, int] | None] | None = None
    try:
        yield "retry: 3000\n: connected\n\n"
        while not closing():
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            try:
                item = await first(session, getter, keepalive)
            except ApiError as exc:  # the session ended: its key was revoked or expired
                yield ended(exc)
                return
            if not getter.done():
                last = await idle() if idle is not None else None
                if last is not None:
                    yield last
                    return
                yield ": keep-alive\n\n"
                continue
            getter = None
            if item is None:
                return
            data = json.dumps({"name": item[0], "version": item[1]}, separators=(",", ":"))
            yield f"event: rotation\ndata: {data}\n\n"
    finally:
        if getter is not None:
            getter.cancel()


__all__ = ["KeySessions", "Session", "ended_error", "first", "rotation_events"]
