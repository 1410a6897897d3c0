"""The per-replica cache of decrypted current tokens, ready-made as response bodies.

An entry is dropped when a promotion is announced (this process's engine, PostgreSQL
``NOTIFY``, or the events poll), when the credential is revoked or removed here, and in any
case after ``ttl`` seconds (default 30), which bounds staleness for changes made by a process
that announces nothing. Concurrent misses for one name share a single load.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool

from .._secret import Secret
from ..models import Health
from ..store import Store
from ..store.current import open_current
from ..timeutil import isoformat


@dataclass(frozen=True, slots=True)
class CacheEntry:
    name: str
    version: int
    body: bytes
    etag: str
    token: Secret
    expires_at: datetime | None
    loaded_at: float
    #: The credential's health when loaded (dropped from the cache when it changes).
    health: str = Health.OK


class TokenCache:
    def __init__(self, store: Store, *, ttl: float = 30.0, max_entries: int = 200_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, CacheEntry] = {}
        self._loading: dict[str, asyncio.Future[CacheEntry]] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, name: str) -> CacheEntry | None:
        entry = self._entries.get(name)
        if entry is not None and time.monotonic() - entry.loaded_at < self.ttl:
            return entry
        return None

    def invalidate(self, name: str) -> None:
        self._entries.pop(name, None)
        self._generation[name] = self._generation.get(name, 0) + 1

    def clear(self) -> None:
        self._entries.clear()
        self._epoch += 1

    async def get(self, name: str) -> CacheEntry:
        entry = self.peek(name)
        if entry is not None:
            return entry
        pending = self._loading.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CacheEntry] = asyncio.get_running_loop().create_future()
        self._loading[name] = future
        gen, epoch = self._generation.get(name, 0), self._epoch
        try:
            entry = await run_in_threadpool(self._load, name)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._loading.pop(name, None)
        # A promotion announced while we were loading may have made this value stale.
        if gen == self._generation.get(name, 0) and epoch == self._epoch:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[name] = entry
        future.set_result(entry)
        return entry

    def _load(self, name: str) -> CacheEntry:
        # One query and one decryption (store.current.open_current), deliberately not
        # Store.reveal(): see there.
        current = open_current(self.store, name)
        number, token, health = current.version, current.token, current.health
        fp, token_type, expires = current.fingerprint, current.token_type, current.expires_at
        body = json.dumps(
            {
                "name": name,
                "version": number,
                "token": token.reveal(),
                "expires_at": isoformat(expires),
                "token_type": token_type,
                "fingerprint": fp,
                "health": health,
            },
            separators=(",", ":"),
        ).encode()
        return CacheEntry(
            name, number, body, f'"v{number}"', token, expires, time.monotonic(), health
        )


__all__ = ["CacheEntry", "TokenCache"]
