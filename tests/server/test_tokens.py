"""Reading tokens: value and ETag, 304, long-poll woken by a rotation, the SSE stream, the cache."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx

from _waiting import wait_for
from permatoken._secret import Secret

from .conftest import LiveBroker, add_manual


def _rotate_by_hand(lb: LiveBroker, name: str, value: str) -> int:
    outcome = lb.engine.rotate(name, value=Secret(value), reason="test")
    assert outcome.status == "rotated", outcome
    assert outcome.version is not None
    return outcome.version


def _waiting(lb: LiveBroker) -> int:
    """Long-polls registered with the broker's change hub, counted on the broker's own loop."""
    loop = lb.broker.hub.loop
    assert loop is not None

    async def count() -> int:
        return lb.broker.hub.waiting

    return asyncio.run_coroutine_threadsafe(count(), loop).result(10)


def test_read_returns_the_current_token_with_an_etag(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """An app key reads its credential with ETag "v1"; If-None-Match gives 304."""
    token = new_token()
    add_manual(live_broker.store, "acme/wa", token)
    c = live_broker.client(live_broker.key("app", "acme/*"))
    r = c.get("/v1/tokens/acme/wa")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == token and body["version"] == 1 and body["name"] == "acme/wa"
    assert body["fingerprint"].startswith("sha256:") and body["expires_at"] is None
    assert r.headers["etag"] == '"v1"' and r.headers["cache-control"] == "no-store"
    again = c.get("/v1/tokens/acme/wa", headers={"If-None-Match": '"v1"'})
    assert again.status_code == 304 and again.content == b""
    assert c.get("/v1/tokens/acme/wa", params={"after_version": 1}).status_code == 304
    assert c.get("/v1/tokens/acme/missing").status_code == 404


def test_a_rotation_wakes_a_long_poll_and_refreshes_the_cache(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """A waiter (after_version=1, wait=30) gets version 2 as soon as it is promoted."""
    add_manual(live_broker.store, "acme/wa", new_token())
    c = live_broker.client(live_broker.key("app", "acme/*"))
    assert c.get("/v1/tokens/acme/wa").json()["version"] == 1  # cached now
    fresh = new_token()
    result: dict[str, Any] = {}

    def wait() -> None:
        result["response"] = c.get("/v1/tokens/acme/wa", params={"after_version": 1, "wait": 30})

    waiter = threading.Thread(target=wait)
    started = time.monotonic()
    waiter.start()
    # Rotate only once the waiter is parked on the hub, so the wake-up is what answers it.
    wait_for(lambda: _waiting(live_broker) == 1, what="the long-poll to register with the hub")
    _rotate_by_hand(live_broker, "acme/wa", fresh)
    waiter.join(timeout=30)
    r: httpx.Response = result["response"]
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["token"] == fresh
    assert time.monotonic() - started < 29
    assert c.get("/v1/tokens/acme/wa").json()["token"] == fresh


def test_long_poll_times_out_with_304(live_broker: LiveBroker, new_token: Any) -> None:
    add_manual(live_broker.store, "acme/wa", new_token())
    c = live_broker.client(live_broker.key("admin"))
    r = c.get("/v1/tokens/acme/wa", params={"after_version": 1, "wait": 0.3})
    assert r.status_code == 304 and r.headers["etag"] == '"v1"'


def test_rotation_made_by_another_process_reaches_waiters_through_the_events_poll(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """A promotion no in-process hook announced (another process) still wakes waiters."""
    add_manual(live_broker.store, "acme/wa", new_token())
    c = live_broker.client(live_broker.key("admin"))
    assert c.get("/v1/tokens/acme/wa").json()["version"] == 1
    fresh = new_token()
    store = live_broker.store
    v = store.add_pending("acme/wa", Secret(fresh), live_broker.store.version("acme/wa").meta)
    store.promote("acme/wa", v.version)  # no engine, no on_promote
    r = c.get("/v1/tokens/acme/wa", params={"after_version": 1, "wait": 10})
    assert r.status_code == 200 and r.json()["token"] == fresh


def test_stream_sends_rotation_events_for_granted_names_only(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """SSE: `event: rotation` with name and version, only for credentials the key may read."""
    add_manual(live_broker.store, "acme/wa", new_token())
    add_manual(live_broker.store, "other/wa", new_token())
    c = live_broker.client(live_broker.key("app", "acme/*"))
    events: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()

    def listen() -> None:
        with c.stream("GET", "/v1/stream", timeout=httpx.Timeout(15.0)) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream"
            )
            kind = None
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, json.loads(line[6:])))
                    if len(events) >= 1:
                        return

    t = threading.Thread(target=listen)
    t.start()
    assert ready.wait(10)
    _rotate_by_hand(live_broker, "other/wa", new_token())
    _rotate_by_hand(live_broker, "acme/wa", new_token())
    t.join(timeout=15)
    assert events == [("rotation", {"name": "acme/wa", "version": 2})]


def test_bad_query_parameters_are_422(live_broker: LiveBroker, new_token: Any) -> None:
    add_manual(live_broker.store, "acme/wa", new_token())
    c = live_broker.client(live_broker.key("admin"))
    for params in ({"wait": "61"}, {"wait": "soon"}, {"after_version": "-1"}):
        r = c.get("/v1/tokens/acme/wa", params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parameter"
