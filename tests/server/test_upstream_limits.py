"""UpstreamPool's own bounds, each alone: threads, calls per key, calls per credential."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from permatoken.server.access import Principal
from permatoken.server.errors import ApiError
from permatoken.server.upstream import UpstreamPool


def _key(key_id: str) -> Principal:
    return Principal(key_id=key_id, role="operator", grants=("acme/*",))


class Blocker:
    """Upstream calls that block their thread until released; counts how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.seen: list[str] = []

    def call(self, label: str) -> Callable[[], str]:
        def fn() -> str:
            with self._lock:
                self.running += 1
                self.most = max(self.most, self.running)
                self.seen.append(label)
            assert self.release.wait(30), "never released"
            with self._lock:
                self.running -= 1
            return label

        return fn


async def _until(cond: Callable[[], bool]) -> None:
    for _ in range(3000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def _settle(pool: UpstreamPool, b: Blocker, waiting: int, running: int) -> None:
    """Every call is either running in a thread or queued in the pool, none in between."""
    await _until(lambda: pool.busy == waiting and b.running == running)


@pytest.mark.anyio
async def test_one_key_runs_at_most_per_key_calls_at_once() -> None:
    pool, b = UpstreamPool(threads=8, per_key=2, queue=64), Blocker()
    p = _key("k1")
    tasks = [asyncio.create_task(pool.run(p, f"acme/c{i}", b.call(f"c{i}"))) for i in range(6)]
    await _settle(pool, b, waiting=6, running=2)
    b.release.set()
    assert sorted(await asyncio.gather(*tasks)) == [f"c{i}" for i in range(6)]
    assert b.most == 2


@pytest.mark.anyio
async def test_another_key_is_not_held_behind_a_busy_one() -> None:
    pool, b = UpstreamPool(threads=8, per_key=2, queue=64), Blocker()
    busy = [asyncio.create_task(pool.run(_key("k1"), f"acme/c{i}", b.call("k1"))) for i in range(5)]
    await _settle(pool, b, waiting=5, running=2)
    other = asyncio.create_task(pool.run(_key("k2"), "acme/other", b.call("k2")))
    await _settle(pool, b, waiting=6, running=3)
    assert b.seen.count("k2") == 1
    b.release.set()
    await asyncio.gather(*busy, other)


@pytest.mark.anyio
async def test_calls_for_one_credential_run_one_at_a_time() -> None:
    pool, b = UpstreamPool(threads=8, per_key=8, queue=64), Blocker()
    same = [asyncio.create_task(pool.run(_key("k1"), "acme/wa", b.call(f"n{i}"))) for i in range(4)]
    await _settle(pool, b, waiting=4, running=1)
    b.release.set()
    await asyncio.gather(*same)
    assert b.most == 1


@pytest.mark.anyio
async def test_threads_bound_every_key_together() -> None:
    pool, b = UpstreamPool(threads=3, per_key=4, queue=64), Blocker()
    tasks = [
        asyncio.create_task(pool.run(_key(f"k{i % 3}"), f"acme/c{i}", b.call(str(i))))
        for i in range(9)
    ]
    await _settle(pool, b, waiting=9, running=3)
    b.release.set()
    await asyncio.gather(*tasks)
    assert b.most == 3


@pytest.mark.anyio
async def test_past_the_queue_a_key_gets_429_and_its_queue_drains() -> None:
    pool, b = UpstreamPool(threads=8, per_key=1, queue=3), Blocker()
    p = _key("k1")
    held = [asyncio.create_task(pool.run(p, f"acme/c{i}", b.call("x"))) for i in range(3)]
    await _settle(pool, b, waiting=3, running=1)
    with pytest.raises(ApiError) as refused:
        await pool.run(p, "acme/c9", b.call("late"))
    assert refused.value.status == 429 and "late" not in b.seen
    b.release.set()
    await asyncio.gather(*held)
    assert pool.busy == 0
    assert await pool.run(p, "acme/c9", lambda: "again") == "again"
