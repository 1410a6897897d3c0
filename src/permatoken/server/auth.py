"""Authenticating requests: bearer API keys, a short-lived key cache, failed-auth slowdown.

Key lookups are cached for ``ttl`` seconds (default 5) per replica, so a revoked or expired key
stops working on every replica within that time (at once on the replica that revoked it).
A key that was not found is remembered as unknown for ``ttl`` seconds (a new key is 256 random
bits nobody can have presented before, so it still works immediately).

Failed authentications spend two token buckets: one per client address and one per presented key
prefix (``pt_`` and four characters; a malformed header spends only the address's). Once either
is empty, refusals are answered 429 with ``Retry-After`` instead of 401 and are no longer
audited one by one. The buckets never stop a key that authenticates: it is always looked up
(single-flight, one indexed read), so a few bad requests from a NAT, a sidecar or localhost do
not lock out the legitimate keys behind the same address.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from ..access import ApiKey, Principal, hash_key, looks_like_key, same_hash
from ..store.apikeys import KeyStore
from .errors import ApiError


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class FailureLimiter:
    """A token bucket per client (an address or a key prefix), spent only by failed authentications.

    ``burst`` failures pass; after that one more every ``1/refill`` seconds; beyond, 429.
    """

    def __init__(
        self,
        burst: int = 10,
        refill: float = 0.2,
        *,
        max_clients: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill = refill
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, client: str) -> _Bucket:
        now = self.clock()
        b = self._buckets.get(client)
        if b is None:
            b = _Bucket(float(self.burst), now)
            self._buckets[client] = b
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.refill)
            b.at = now
            self._buckets.move_to_end(client)
        return b

    def retry_after(self, client: str) -> float | None:
        """Seconds to wait if ``client`` is slowed down right now, else None."""
        if client not in self._buckets:
            return None
        b = self._bucket(client)
        if b.tokens >= 1:
            return None
        return (1 - b.tokens) / self.refill if self.refill > 0 else 3600.0

    def failed(self, client: str) -> None:
        b = self._bucket(client)
        b.tokens = max(0.0, b.tokens - 1)


class Authenticator:
    def __init__(
        self,
        keys: KeyStore,
        *,
        ttl: float = 5.0,
        limiter: FailureLimiter | None = None,
        on_failure: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        """``on_failure(client, reason, key id or None)`` is told of every refused key (audit,
        metrics)."""
        self.keys = keys
        self.ttl = ttl
        self.limiter = limiter or FailureLimiter()
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._principals: dict[str, Principal] = {}
        # Single-flight lookups and refresh-ahead: a busy key is re-read from the database once,
        # in the background, before its entry expires; without this every request that arrives
        # while the entry is stale does its own lookup (a latency spike every ``ttl`` seconds).
        self._inflight: dict[str, asyncio.Future[ApiKey | None]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self.on_failure = on_failure

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached keys (all, or one by id) so a revocation applies at once here."""
        if key_id is None:
            self._cache.clear()
            return
        for h, (k, _) in list(self._cache.items()):
            if k.id == key_id:
                self._cache.pop(h, None)

    def cached(self, authorization: bytes) -> Principal | None:
        """The caller from the cache alone (no I/O), or None: then take the full path."""
        if not authorization.startswith(b"Bearer "):
            return None
        digest = hashlib.sha256(authorization[7:].strip()).hexdigest()
        hit = self._cache.get(digest)
        if hit is None:
            return None
        age = time.monotonic() - hit[1]
        if age >= self.ttl:
            return None
        if age >= self.ttl / 2 and digest not in self._refreshing:
            self._refresh_soon(digest)
        key = hit[0]
        if key.revoked_at is not None or (
            key.expires_at is not None and key.expires_at.timestamp() <= time.time()
        ):
            return None
        return self._principals.get(digest)

    async def authenticate(self, authorization: str | None, client: str) -> Principal:
        if not authorization:
            raise ApiError(
                401,
                "unauthorized",
                "missing API key: send an Authorization header with `Bearer pt_…`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not looks_like_key(value):
            return self._refuse(client, "malformed", None)
        digest = hash_key(value)
        prefix = value[:7]
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and now - hit[1] < self.ttl:
            key = hit[0]
        else:
            unknown_at = self._unknown.get(digest)
            if unknown_at is not None and now - unknown_at < self.ttl:
                return self._refuse(client, "unknown", None, prefix)
            found = await self._lookup(digest)
            now = time.monotonic()
            if found is None or not same_hash(found.key_hash, digest):
                self._cache.pop(digest, None)
                self._unknown[digest] = now
                self._unknown.move_to_end(digest)
                if len(self._unknown) > 10_000:
                    self._unknown.popitem(last=False)
                return self._refuse(client, "unknown", None, prefix)
            key = found
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = (key, now)
        if not key.usable_at(datetime.now(UTC)):
            return self._refuse(client, "revoked" if key.revoked_at else "expired", key.id, prefix)
        principal = self._principals.get(digest)
        if principal is None or principal.key_id != key.id:
            principal = Principal(key.id, key.role, key.grants, key.expires_at)
            if len(self._principals) > 100_000:
                self._principals.clear()
            self._principals[digest] = principal
        return principal

    async def _lookup(self, digest: str) -> ApiKey | None:
        """One database lookup per key at a time; concurrent callers share its answer."""
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ApiKey | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            found = await run_in_threadpool(self.keys.lookup, digest)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody is warned about it
            raise
        finally:
            self._inflight.pop(digest, None)
        future.set_result(found)
        return found

    def _refresh_soon(self, digest: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refreshing.add(digest)
        task = loop.create_task(self._refresh(digest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, digest: str) -> None:
        try:
            found = await self._lookup(digest)
        except Exception:
            return  # the entry simply expires and the next request takes the full path
        finally:
            self._refreshing.discard(digest)
        if found is None or not same_hash(found.key_hash, digest):
            self._cache.pop(digest, None)
        else:
            self._cache[digest] = (found, time.monotonic())

    def _refuse(
        self, client: str, reason: str, key_id: str | None, prefix: str | None = None
    ) -> Principal:
        buckets = [f"address:{client}"] + ([f"key:{prefix}"] if prefix else [])
        waits = [w for w in map(self.limiter.retry_after, buckets) if w is not None]
        if waits:
            raise _throttled(max(waits))
        for bucket in buckets:
            self.limiter.failed(bucket)
        if self.on_failure is not None:
            self.on_failure(client, reason, key_id)
        text = {
            "malformed": "the Authorization header must be `Bearer pt_…` with a permatoken API key",
            "unknown": "unknown API key",
            "revoked": "this API key was revoked",
            "expired": "this API key has expired",
        }[reason]
        raise ApiError(401, "unauthorized", text, headers={"WWW-Authenticate": "Bearer"})


def _throttled(wait: float) -> ApiError:
    seconds = max(1, int(wait + 0.999))
    return ApiError(
        429,
        "too_many_failures",
        f"too many failed authentications from this address or with this key; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


__all__ = ["Authenticator", "FailureLimiter"]
