"""Slow upstreams never starve reads: engine calls wait on Meta in threads of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from _live_sandbox import ThreadSandbox
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.server import BrokerConfig

from .conftest import TEST_CONFIG, LiveBroker, until


class Gate:
    """ASGI middleware in front of the sandbox: holds every debug_token call until released."""

    def __init__(self) -> None:
        self.held = 0
        self._open: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wrap(self, app: Any) -> Any:
        async def gated(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/debug_token"):
                if self._open is None:
                    self._loop, self._open = asyncio.get_running_loop(), asyncio.Event()
                self.held += 1
                try:
                    await self._open.wait()
                finally:
                    self.held -= 1
            await app(scope, receive, send)

        return gated

    def release(self) -> None:
        if self._loop is not None and self._open is not None:
            self._loop.call_soon_threadsafe(self._open.set)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def sandbox(gate: Gate) -> Iterator[ThreadSandbox]:
    with ThreadSandbox(wrap=gate.wrap) as server:
        try:
            yield server
        finally:
            gate.release()


def _credentials(lb: LiveBroker, world: dict[str, Any], n: int) -> None:
    app = world["apps"][0]
    lb.store.put_app(app["id"], Secret(app["secret"]))
    for i in range(n):
        lb.store.add_credential(
            NewCredential(name=f"acme/c{i}", app_id=app["id"]),
            Secret(f"zqNotAMetaToken{i:04d}abcdefghij"),
            VersionMeta(token_type="SYSTEM_USER"),
        )


class Storm:
    """``n`` concurrent failure reports (one per credential) from a background thread."""

    def __init__(self, lb: LiveBroker, key: str, n: int) -> None:
        self.answers: list[httpx.Response] = []
        self.done = 0

        async def fire() -> None:
            limits = httpx.Limits(max_connections=n + 10)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(
                base_url=lb.url, limits=limits, timeout=120, headers=headers
            ) as c:

                async def one(i: int) -> httpx.Response:
                    r = await c.post("/v1/reports", json={"name": f"acme/c{i}", "version": 1})
                    self.done += 1
                    return r

                self.answers = list(await asyncio.gather(*(one(i) for i in range(n))))

        self.thread = threading.Thread(target=asyncio.run, args=(fire(),), daemon=True)
        self.thread.start()

    def join(self) -> list[httpx.Response]:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the reports never finished"
        return self.answers


@pytest.fixture
def broker_config() -> BrokerConfig:
    """Room for every report at Meta at once: the point is that they hold none of the read threads."""
    return replace(TEST_CONFIG, upstream_threads=60, upstream_per_key=60)


def test_reads_are_answered_while_reports_wait_on_a_slow_meta(
    live_broker: LiveBroker, world: dict[str, Any], gate: Gate
) -> None:
    """60 reports held inside the sandbox; a read with an uncached key and /healthz still answer."""
    _credentials(live_broker, world, 60)
    reporter = live_broker.key("app", "acme/*")
    reader = live_broker.client(live_broker.key("app", "acme/*"), timeout=30)
    storm = Storm(live_broker, reporter, 60)
    # 40 is Starlette's whole shared thread pool: reports used to take every thread of it.
    until(lambda: gate.held >= 40)
    read = reader.get("/v1/tokens/acme/c59")  # uncached key and token: both need a thread
    health = live_broker.client().get("/healthz")
    assert gate.held >= 40 and storm.done == 0, "the reports were not in flight during the read"
    assert read.status_code == 200 and health.status_code == 200
    gate.release()
    answers = storm.join()
    assert [r.status_code for r in answers] == [200] * 60


def test_one_key_cannot_queue_unbounded_upstream_work(
    live_broker: LiveBroker, world: dict[str, Any], gate: Gate
) -> None:
    """Past ``upstream_queue`` calls waiting or running for one key: 429 with Retry-After."""
    _credentials(live_broker, world, 8)
    live_broker.broker.upstream.queue = 5
    storm = Storm(live_broker, live_broker.key("app", "acme/*"), 8)
    until(lambda: storm.done >= 3 and gate.held >= 1)  # refused at once; the others held
    assert gate.held >= 1 and live_broker.broker.upstream.busy == 5
    gate.release()
    answers = storm.join()
    assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 3
    assert all(r.headers["retry-after"] for r in answers if r.status_code == 429)
