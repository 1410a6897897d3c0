"""The API-key cache: one database read per key at a time, refreshed ahead, revocation in time."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from datetime import UTC, datetime

import pytest

from permatoken.server.access import ApiKey, Role, hash_key, new_key
from permatoken.server.auth import Authenticator


class CountingKeys:
    """Stands in for the KeyStore: counts lookups, each taking a little time like a query."""

    def __init__(self, key: ApiKey) -> None:
        self.key: ApiKey | None = key
        self.lookups = 0
        self._lock = threading.Lock()

    def lookup(self, digest: str) -> ApiKey | None:
        with self._lock:
            self.lookups += 1
        time.sleep(0.02)
        return self.key if self.key and self.key.key_hash == digest else None


def _key(value: str) -> ApiKey:
    return ApiKey(
        "k1", Role.APP, ("acme/*",), hash_key(value), value[:7], None, datetime.now(UTC), "test"
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_concurrent_requests_with_an_uncached_key_share_one_lookup() -> None:
    """100 requests arriving together with a key not in the cache make one database read."""
    value = new_key().reveal()
    keys = CountingKeys(_key(value))
    auth = Authenticator(keys, ttl=5.0)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(auth.authenticate(f"Bearer {value}", "10.0.0.1") for _ in range(100))
    )
    assert {p.key_id for p in results} == {"k1"}
    assert keys.lookups == 1


@pytest.mark.anyio
async def test_a_busy_key_is_refreshed_ahead_and_never_falls_out_of_the_fast_path() -> None:
    """Past half its lifetime a cached key is re-read once in the background; the fast path
    keeps answering, and a revocation seen by that re-read applies before the entry expires."""
    value = new_key().reveal()
    keys = CountingKeys(_key(value))
    auth = Authenticator(keys, ttl=0.2)  # type: ignore[arg-type]
    header = f"Bearer {value}".encode()
    await auth.authenticate(header.decode(), "10.0.0.1")
    assert keys.lookups == 1
    deadline = time.monotonic() + 1.0
    misses = 0
    while time.monotonic() < deadline:
        if auth.cached(header) is None:
            misses += 1
            await auth.authenticate(header.decode(), "10.0.0.1")
        await asyncio.sleep(0.005)
    assert misses == 0
    assert 3 <= keys.lookups <= 12  # about one background re-read per half lifetime
    assert keys.key is not None
    keys.key = dataclasses.replace(keys.key, revoked_at=datetime.now(UTC))
    await asyncio.sleep(0.25)
    refused_within_ttl = False
    for _ in range(60):
        if auth.cached(header) is None:
            refused_within_ttl = True
            break
        await asyncio.sleep(0.005)
    assert refused_within_ttl
