"""Upstream work (Meta, token endpoints) in threads of its own, bounded per key and credential.

Reports, rotations, revocations, inspections and online adds call the engine, which blocks a
thread for as long as Meta takes, and for up to its lease wait when another worker holds the
credential. On Starlette's shared thread pool (40 threads) a burst of them used to take every
thread, so token reads, key lookups and health checks queued behind Meta.

Here each such call runs under a limiter of its own (``upstream_threads``, default 8), so at most
that many threads ever wait on upstreams and the shared pool stays free for reads. Before taking
a thread a call also holds its key's semaphore (``upstream_per_key``, default 4: one busy
application cannot take every upstream thread) and its credential's lock (calls for one
credential serialise in the engine anyway; waiting here costs no thread). A key with more than
``upstream_queue`` calls waiting or running gets 429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from ..access import Principal
from .errors import ApiError

T = TypeVar("T")


class UpstreamPool:
    def __init__(self, threads: int = 8, per_key: int = 4, queue: int = 64) -> None:
        self.threads = threads
        self.per_key = per_key
        self.queue = queue
        self._limiter: anyio.CapacityLimiter | None = None
        self._keys: dict[str, asyncio.Semaphore] = {}
        self._names: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._names_waiting: dict[str, int] = {}

    @property
    def busy(self) -> int:
        """Calls waiting or running, over every key."""
        return sum(self._waiting.values())

    async def run(self, p: Principal, name: str | None, fn: Callable[[], T]) -> T:
        """``fn()`` in an upstream thread once the key's and the credential's turn has come."""
        key = p.key_id
        if self._waiting.get(key, 0) >= self.queue:
            raise ApiError(
                429,
                "too_many_requests",
                f"this API key already has {self.queue} upstream operations waiting; retry later",
                headers={"Retry-After": "5"},
            )
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            sem = self._keys.setdefault(key, asyncio.Semaphore(self.per_key))
            async with sem, self._credential(name):
                return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._keys.pop(key, None)

    @contextlib.asynccontextmanager
    async def _credential(self, name: str | None) -> AsyncIterator[None]:
        if name is None:
            yield
            return
        lock = self._names.setdefault(name, asyncio.Lock())
        self._names_waiting[name] = self._names_waiting.get(name, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._names_waiting[name] -= 1
            if not self._names_waiting[name]:
                del self._names_waiting[name]
                self._names.pop(name, None)


__all__ = ["UpstreamPool"]
