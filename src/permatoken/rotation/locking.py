"""Exactly one rotation per credential: an in-process lock per name, then the database lease.

The in-process lock keeps threads of one process from polling the database against each other;
the lease (:meth:`~permatoken.store.Store.acquire_lease`) excludes other processes and replicas
and expires, so a dead holder's work is taken over. Lease owner and TTL are read at call time:
the serve command and the scheduler set them on the engine after it is built.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from ..store import Store


class CredentialLocks:
    """One :class:`threading.Lock` per credential name, made on first use."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock_for(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())


@contextlib.contextmanager
def exclusive(
    store: Store,
    locks: CredentialLocks,
    name: str,
    *,
    owner: str,
    lease_ttl: float,
    wait_timeout: float,
    wait: bool = True,
) -> Iterator[bool]:
    """Hold the in-process lock and the database lease on ``name``; yields False if busy.

    Raises NotFoundError for an unknown name (there is no row to lease; waiting is useless).
    """
    store.get(name)
    lock = locks.lock_for(name)
    if not lock.acquire(timeout=wait_timeout if wait else 0):
        yield False
        return
    try:
        deadline = time.monotonic() + (wait_timeout if wait else 0)
        delay = 0.02
        while not store.acquire_lease(name, owner, lease_ttl):
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        try:
            yield True
        finally:
            store.release_lease(name, owner)
    finally:
        lock.release()
