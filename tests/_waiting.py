"""Waiting on an observable condition instead of sleeping a fixed time.

A fixed sleep either wastes time or, on a busy machine, is too short: then the test silently
skips the path its name promises (a waiter not registered yet, a sender not sending yet).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.01,
) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` after ``timeout`` s.

    The timeout is a safety net for a broken build, not the synchronisation.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pg_lock_waiters(url: str) -> int:
    """Sessions of the database at ``url`` waiting for a lock (row or advisory) held by another.

    What a test waits on to know that a transaction is blocked, rather than assuming it after
    a sleep: the lock is the behaviour under test.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
