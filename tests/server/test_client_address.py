"""Failed-auth throttling never locks out a working key; X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from permatoken.server import BrokerConfig
from permatoken.server.access import new_key
from permatoken.server.keystore import KeyStore
from permatoken.server.proxies import ClientAddresses
from permatoken.store import Store

from .conftest import LiveBroker


def _scope(peer: str, *xff: str) -> dict[str, Any]:
    return {"client": (peer, 5000), "headers": [(b"x-forwarded-for", v.encode()) for v in xff]}


def test_the_client_address_is_the_peer_unless_a_trusted_proxy_forwarded_it() -> None:
    none = ClientAddresses()
    assert none.of(_scope("127.0.0.1", "203.0.113.9")) == "127.0.0.1"
    proxied = ClientAddresses(["10.0.0.0/8", "127.0.0.1"])
    assert proxied.of(_scope("10.1.2.3", "203.0.113.9")) == "203.0.113.9"
    # The client's own X-Forwarded-For entry is left of what the proxies appended: not believed.
    assert proxied.of(_scope("10.1.2.3", "6.6.6.6, 203.0.113.9, 10.9.9.9")) == "203.0.113.9"
    assert proxied.of(_scope("10.1.2.3", "6.6.6.6", "203.0.113.9")) == "203.0.113.9"
    assert proxied.of(_scope("198.51.100.1", "203.0.113.9")) == "198.51.100.1"
    assert proxied.of(_scope("10.1.2.3", "not-an-address")) == "10.1.2.3"
    assert proxied.of(_scope("10.1.2.3")) == "10.1.2.3"


def test_a_throttled_address_still_lets_a_working_key_in(
    broker_settings: Any,
    store: Any,
    engine: Any,
    fast_config: Callable[..., BrokerConfig],
) -> None:
    """Bad keys from one address (a NAT, localhost) get 429; a valid uncached key gets 200."""
    with LiveBroker(broker_settings, store, engine, fast_config(auth_burst=5)) as lb:
        bad = [lb.client(new_key().reveal()).get("/v1/credentials").status_code for _ in range(7)]
        assert bad == [401] * 5 + [429] * 2
        good = lb.client(lb.key("reader"))  # never looked up before: not in the key cache
        assert good.get("/v1/credentials").status_code == 200


@contextmanager
def served(env: dict[str, str]) -> Iterator[str]:
    """A real `permatoken serve` (API only) on a free port; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "serve", "--port", "0", "--no-scheduler"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"NO_COLOR": "1", "COLUMNS": "200"} | env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        m = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert m, proc.stderr.read() if proc.stderr else "serve did not start"
        yield f"http://127.0.0.1:{m.group(1)}"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _failures(url: str, admin: str) -> list[str | None]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as c:
        items = c.get("/v1/audit", params={"action": "auth.failed", "limit": 100}).json()["items"]
    return [i["source"] for i in items]


def _until_throttled(url: str, headers: Callable[[int], dict[str, str]]) -> list[int]:
    """Bad requests until the first 429 (at most 40): the throttle drains 1 per failure and
    refills 1 per 5 s, so a 429 comes after about 10 however slow the machine is."""
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 40:
        i = len(statuses)
        statuses.append(httpx.get(url + "/v1/credentials", headers=headers(i)).status_code)
    return statuses


def test_serve_ignores_x_forwarded_for_without_trusted_proxies(store: Store) -> None:
    """A local caller cannot forge its audit address nor dodge the throttle with the header."""
    admin = KeyStore(store).create("admin", actor="test")[1].reveal()
    with served({}) as url:
        statuses = _until_throttled(
            url,
            lambda i: {
                "X-Forwarded-For": f"203.0.113.{i}",
                "Authorization": f"Bearer {new_key().reveal()}",  # a new key prefix each time
            },
        )
        assert statuses[-1] == 429 and set(statuses[:-1]) == {401} and len(statuses) >= 11
        assert set(_failures(url, admin)) == {"127.0.0.1"}


def test_serve_believes_trusted_proxies_and_throttles_a_key_across_addresses(store: Store) -> None:
    """Through a trusted proxy each hop is its own address; one bad key is still throttled."""
    admin = KeyStore(store).create("admin", actor="test")[1].reveal()
    reader = KeyStore(store).create("reader", actor="test")[1].reveal()
    bad = new_key().reveal()
    with served({"PERMATOKEN_TRUSTED_PROXIES": "127.0.0.1"}) as url:
        statuses = _until_throttled(
            url, lambda i: {"X-Forwarded-For": f"203.0.113.{i}", "Authorization": f"Bearer {bad}"}
        )
        assert statuses[-1] == 429 and set(statuses[:-1]) == {401} and len(statuses) >= 11
        refused = len(statuses) - 1
        assert set(_failures(url, admin)) == {f"203.0.113.{i}" for i in range(refused)}
        ok = httpx.get(
            url + "/v1/credentials",
            headers={"X-Forwarded-For": "203.0.113.1", "Authorization": f"Bearer {reader}"},
        )
        assert ok.status_code == 200
