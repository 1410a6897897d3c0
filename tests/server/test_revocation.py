"""A revoked or expired key gets nothing more: open long-polls answer 401, streams end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from permatoken._secret import Secret
from permatoken.server import BrokerConfig
from permatoken.server.keystore import KeyStore
from permatoken.store.schema_broker import api_keys

from .conftest import TEST_CONFIG, LiveBroker, add_manual, until


@pytest.fixture
def broker_config() -> BrokerConfig:
    """Keys re-read every 0.5 s (the key-cache TTL bounds revocations made elsewhere)."""
    return replace(TEST_CONFIG, key_cache_ttl=0.5)


class LongPoll:
    """``GET /v1/tokens/{name}?after_version=1&wait=…`` in a thread; ``result()`` joins it."""

    def __init__(self, client: httpx.Client, name: str, wait: float = 30) -> None:
        self.response: httpx.Response | None = None

        def run() -> None:
            self.response = client.get(
                f"/v1/tokens/{name}", params={"after_version": 1, "wait": wait}
            )

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self) -> httpx.Response:
        self.thread.join(timeout=60)
        assert self.response is not None, "the long-poll never answered"
        return self.response


@pytest.fixture
def setup(live_broker: LiveBroker, new_token: Any) -> Iterator[tuple[LiveBroker, str, str]]:
    """acme/wa at version 1, an app key for it (value and id), and nobody waiting yet."""
    add_manual(live_broker.store, "acme/wa", new_token())
    key, value = KeyStore(live_broker.store).create("app", ["acme/*"], actor="test")
    assert live_broker.client(value.reveal()).get("/v1/tokens/acme/wa").status_code == 200
    yield live_broker, value.reveal(), key.id


def _rotate(lb: LiveBroker, token: str) -> None:
    assert lb.engine.rotate("acme/wa", value=Secret(token), reason="test").status == "rotated"


def test_a_key_revoked_through_the_api_ends_its_long_poll_before_the_next_version(
    setup: tuple[LiveBroker, str, str], new_token: Any
) -> None:
    lb, key, key_id = setup
    poll = LongPoll(lb.client(key), "acme/wa")
    until(lambda: lb.broker.hub.waiting >= 1)
    admin = lb.client(lb.key("admin"))
    assert admin.delete(f"/v1/keys/{key_id}").status_code == 200
    fresh = new_token()
    _rotate(lb, fresh)
    r = poll.result()
    assert r.status_code == 401, r.text
    assert r.json()["error"]["message"] == "this API key was revoked"
    assert fresh not in r.text


def test_a_key_revoked_through_the_api_ends_its_stream(
    setup: tuple[LiveBroker, str, str], new_token: Any
) -> None:
    """The stream says `event: error` (unauthorized) and closes; no rotation reaches it."""
    lb, key, key_id = setup
    admin = lb.client(lb.key("admin"))
    with lb.client(key).stream("GET", "/v1/stream", timeout=30) as r:
        lines = r.iter_lines()
        assert next(lines) == "retry: 3000"  # the stream (and its session) is open
        assert admin.delete(f"/v1/keys/{key_id}").status_code == 200
        _rotate(lb, new_token())
        events = [line for line in lines if line.startswith("event:")]
    assert events == ["event: error"]


def test_a_key_revoked_by_another_process_ends_its_long_poll_within_the_cache_ttl(
    setup: tuple[LiveBroker, str, str],
) -> None:
    """Revoked straight in the store (another replica, `permatoken keys revoke`): 401, not 304."""
    lb, key, key_id = setup
    poll = LongPoll(lb.client(key), "acme/wa", wait=30)
    until(lambda: lb.broker.hub.waiting >= 1)
    KeyStore(lb.store).revoke(key_id, actor="cli")
    r = poll.result()
    assert r.status_code == 401 and r.json()["error"]["message"] == "this API key was revoked"


def test_a_key_that_expires_during_a_long_poll_gets_401(
    live_broker: LiveBroker, new_token: Any
) -> None:
    add_manual(live_broker.store, "acme/wa", new_token())
    key, value = KeyStore(live_broker.store).create("app", ["acme/*"], actor="test")
    with live_broker.store.write() as conn:
        soon = datetime.now(UTC) + timedelta(seconds=2)
        conn.execute(api_keys.update().where(api_keys.c.id == key.id).values(expires_at=soon))
    r = LongPoll(live_broker.client(value.reveal()), "acme/wa", wait=30).result()
    assert r.status_code == 401 and r.json()["error"]["message"] == "this API key has expired"


@pytest.mark.timeout(60)  # without the fix the stream stays open: fail, do not hang
def test_a_key_revoked_by_another_process_ends_its_stream(
    setup: tuple[LiveBroker, str, str],
) -> None:
    """Revoked straight in the store: the open stream ends with `event: error` (within the TTL)."""
    lb, key, key_id = setup
    with lb.client(key).stream("GET", "/v1/stream", timeout=30) as r:
        lines = r.iter_lines()
        assert next(lines) == "retry: 3000"
        KeyStore(lb.store).revoke(key_id, actor="cli")
        events = [line for line in lines if line.startswith("event:")]
    assert events == ["event: error"]


@pytest.mark.timeout(60)  # without the fix the stream stays open: fail, do not hang
def test_a_key_that_expires_ends_its_stream(live_broker: LiveBroker, new_token: Any) -> None:
    add_manual(live_broker.store, "acme/wa", new_token())
    key, value = KeyStore(live_broker.store).create("app", ["acme/*"], actor="test")
    with live_broker.store.write() as conn:
        soon = datetime.now(UTC) + timedelta(seconds=2)
        conn.execute(api_keys.update().where(api_keys.c.id == key.id).values(expires_at=soon))
    with live_broker.client(value.reveal()).stream("GET", "/v1/stream", timeout=30) as r:
        events = [line for line in r.iter_lines() if line.startswith("event:")]
    assert events == ["event: error"]
