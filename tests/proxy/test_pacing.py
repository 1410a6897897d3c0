"""Pacing of Cloud API sends per phone number, across every client of the proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _live_sandbox import ThreadSandbox, seeded_state
from permatoken.sandbox import SandboxConfig
from permatoken.settings import ProxySettings

from .conftest import MINT, SEND, Proxied, until

LIMIT = 20  # the sandbox's throughput limit per number, below the bursts' rate


@pytest.fixture
def sandbox() -> Iterator[ThreadSandbox]:
    with ThreadSandbox(seeded_state(SandboxConfig(messages_per_second=LIMIT))) as server:
        yield server


def _burst(
    proxied: Proxied, count: int, *, timeout: float = 60
) -> list[httpx.Response | Exception]:
    """``count`` concurrent sends through the proxy, from 4 clients."""

    async def run() -> list[httpx.Response | Exception]:
        clients = [
            httpx.AsyncClient(
                base_url=proxied.base_url,
                headers={"Authorization": f"Bearer {proxied.key}"},
                timeout=timeout,
            )
            for _ in range(4)
        ]
        body = {"messaging_product": "whatsapp", "text": {"body": "burst"}}

        async def one(i: int) -> httpx.Response | Exception:
            try:
                return await clients[i % 4].post(
                    f"/v25.0/{proxied.phone_id}/messages", json={**body, "to": f"1555{i:07d}"}
                )
            except Exception as exc:
                return exc

        try:
            return list(await asyncio.gather(*(one(i) for i in range(count))))
        finally:
            for c in clients:
                await c.aclose()

    return asyncio.run(run())


def _throttled(proxied: Proxied) -> list[dict[str, Any]]:
    return [c for c in proxied.state.calls(SEND) if c["error_code"] == 130429]


@pytest.mark.parametrize("proxy_settings", [ProxySettings(messages_per_second=0)])
def test_without_pacing_a_burst_hits_130429_and_renews_nothing(proxied: Proxied):
    """The control of libraries/test_pacing.py (so that test has teeth): the sandbox clock is
    frozen for the burst, so every send falls in one of its seconds however slowly this machine
    serves them; Meta's 130429s pass through and renew nothing."""
    proxied.state.clock.freeze()
    try:
        results = _burst(proxied, 3 * LIMIT)
    finally:
        proxied.state.clock.unfreeze()
    codes = {
        r.json()["error"]["code"]
        for r in results
        if isinstance(r, httpx.Response) and r.status_code != 200
    }
    assert codes == {130429} and _throttled(proxied)
    assert proxied.state.calls(MINT) == [] and proxied.state.calls("GET /debug_token") == []


@pytest.mark.parametrize(
    "proxy_settings", [ProxySettings(messages_per_second=5, pacing_max_wait=1)]
)
def test_past_the_queue_bound_the_proxy_answers_like_a_130429(proxied: Proxied):
    """Sends whose turn is more than pacing_max_wait away: 429 / 130429 / Retry-After at once,
    never sent; the others go out in their turn."""
    results = _burst(proxied, 20)
    answers = [r for r in results if isinstance(r, httpx.Response)]
    assert len(answers) == 20
    paced = [r for r in answers if r.status_code == 429]
    sent = [r for r in answers if r.status_code == 200]
    assert paced and sent and len(paced) + len(sent) == 20
    for r in paced:
        error = r.json()["error"]
        assert error["code"] == 130429 and error["is_transient"] is True
        assert r.headers["x-permatoken-error"] == "paced" and int(r.headers["retry-after"]) >= 1
        assert error["error_data"]["messaging_product"] == "whatsapp"
    assert len(proxied.state.calls(SEND)) == len(sent)


@pytest.mark.parametrize(
    "proxy_settings", [ProxySettings(messages_per_second=0.5, pacing_max_wait=30)]
)
def test_a_send_whose_client_hung_up_while_queued_is_never_sent(proxied: Proxied):
    """Clients that gave up while their sends waited for their turn: Meta never gets those
    (their callers may already be retrying)."""

    async def run() -> None:
        async with httpx.AsyncClient(
            base_url=proxied.base_url,
            headers={"Authorization": f"Bearer {proxied.key}"},
            timeout=60,
        ) as c:
            body = {"messaging_product": "whatsapp", "to": "16505551234", "text": {"body": "q"}}
            tasks = [
                asyncio.ensure_future(c.post(f"/v25.0/{proxied.phone_id}/messages", json=body))
                for _ in range(4)
            ]
            while proxied.proxy.pacer.waiting < 3:  # one sent at once, three in the queue
                await asyncio.sleep(0.01)
            for task in tasks:
                if not task.done():
                    task.cancel()  # the client hangs up: httpx closes those connections
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    until(lambda: proxied.proxy.pacer.waiting == 0)
    metrics = proxied.broker.client(proxied.broker.key("admin")).get("/metrics").text
    assert 'permatoken_proxy_requests_total{outcome="abandoned"} 3.0' in metrics
    assert len(proxied.state.messages()) == 1 and len(proxied.state.calls(SEND)) == 1
