"""PermatokenAuth: bearer injection, one recovery and one retry on 190, nothing on throttles."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from permatoken.client import AsyncTokenSource, PermatokenAuth, TokenSource
from permatoken.client.auth import RECOVERY_ERROR, RETRIED

from ._fakes import AsyncFakeBackend, FakeBackend, token

DEAD = {
    "error": {
        "message": "Error validating access token: The session was invalidated explicitly "
        "using an API call.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 466,
    }
}


def graph(
    errors: dict[str, int] | None = None, *, valid_from: list[int]
) -> tuple[httpx.MockTransport, list[str]]:
    """A Graph stand-in: versions >= valid_from[0] work; ``errors`` maps paths to codes."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bearer = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(bearer)
        code = (errors or {}).get(request.url.path)
        if code is not None:
            body = {
                "error": {"message": f"(#{code}) limit", "type": "OAuthException", "code": code}
            }
            return httpx.Response(400, json=body)
        version = int(bearer[7:11])
        if version < valid_from[0]:
            return httpx.Response(401, json=DEAD)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler), seen


def test_a_dead_token_is_reported_and_the_request_retried_once_with_the_next_version():
    """190 on version 1: one report, one retry with version 2, the caller sees the 200."""
    backend = FakeBackend()
    transport, seen = graph(valid_from=[2])
    with (
        TokenSource(backend, "acme/messaging") as source,
        httpx.Client(auth=PermatokenAuth(source), transport=transport) as http,
    ):
        response = http.post("https://graph.test/v25.0/1/messages", json={"x": 1})
    assert response.status_code == 200 and response.extensions[RETRIED] is True
    assert backend.reports == [1]
    assert seen == [token(1).value.reveal(), token(2).value.reveal()]


def test_the_retry_happens_once_even_if_the_next_version_is_dead_too():
    """Still 190 after recovery: exactly two requests, the 401 comes back to the caller."""
    backend = FakeBackend()
    transport, seen = graph(valid_from=[99])
    with (
        TokenSource(backend, "acme/messaging") as source,
        httpx.Client(auth=PermatokenAuth(source), transport=transport) as http,
    ):
        response = http.get("https://graph.test/v25.0/me")
    assert response.status_code == 401 and len(seen) == 2


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80007, 80008, 130429, 131056])
def test_throttling_never_triggers_a_report(code: int):
    """Throttle codes pass straight through: no report, no retry."""
    backend = FakeBackend()
    transport, seen = graph({"/v25.0/1/messages": code}, valid_from=[1])
    with (
        TokenSource(backend, "acme/messaging") as source,
        httpx.Client(auth=PermatokenAuth(source), transport=transport) as http,
    ):
        response = http.post("https://graph.test/v25.0/1/messages", json={})
    assert response.status_code == 400 and len(seen) == 1
    assert backend.reports == []


def test_a_failed_recovery_returns_the_original_answer_with_the_reason(
    caplog: pytest.LogCaptureFixture,
):
    """needs_human: the 401 is returned untouched, the reason is attached, no token is logged."""
    caplog.set_level(logging.DEBUG)
    backend = FakeBackend(report_status="needs_human")
    transport, seen = graph(valid_from=[2])
    with (
        TokenSource(backend, "acme/messaging") as source,
        httpx.Client(auth=PermatokenAuth(source), transport=transport) as http,
    ):
        response = http.get("https://graph.test/v25.0/me")
    assert response.status_code == 401 and len(seen) == 1
    assert response.extensions[RECOVERY_ERROR].status == "needs_human"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token(1).value.reveal() not in logged and "version 1" in logged


def test_a_non_graph_401_with_a_body_that_is_not_json_is_still_classified():
    """A 401 without a Graph envelope counts as dead (the status is the last resort)."""
    backend = FakeBackend()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["Authorization"])
        return (
            httpx.Response(401, text="<html>nope</html>")
            if len(calls) == 1
            else httpx.Response(200, json={})
        )

    with (
        TokenSource(backend, "acme/messaging") as source,
        httpx.Client(auth=PermatokenAuth(source), transport=httpx.MockTransport(handler)) as http,
    ):
        assert http.get("https://graph.test/x").status_code == 200
    assert backend.reports == [1]


@pytest.mark.anyio
async def test_async_flow_recovers_once_for_a_storm():
    """200 concurrent async requests on a dead version: one report, each retried once, all 200."""
    import anyio

    backend = AsyncFakeBackend(report_delay=0.05)
    transport, seen = graph(valid_from=[2])
    async_transport = httpx.MockTransport(transport.handler)  # type: ignore[attr-defined]
    async with AsyncTokenSource(backend, "acme/messaging") as source:
        async with httpx.AsyncClient(
            auth=PermatokenAuth(source), transport=async_transport
        ) as http:
            statuses: list[int] = []

            async def one() -> None:
                statuses.append(
                    (await http.post("https://graph.test/v25.0/1/messages", json={})).status_code
                )

            async with anyio.create_task_group() as tg:
                for _ in range(200):
                    tg.start_soon(one)
    assert statuses == [200] * 200
    assert backend.sync.reports == [1]
    assert len(seen) <= 400


@pytest.mark.anyio
async def test_a_sync_source_works_in_an_async_client():
    """A TokenSource (threads) can back an httpx.AsyncClient; its report runs in a thread."""
    backend = FakeBackend()
    transport, _ = graph(valid_from=[2])
    with TokenSource(backend, "acme/messaging") as source:
        async with httpx.AsyncClient(
            auth=PermatokenAuth(source), transport=httpx.MockTransport(transport.handler)
        ) as http:  # type: ignore[attr-defined]
            assert (await http.get("https://graph.test/me")).status_code == 200
    assert backend.reports == [1]


def test_an_async_source_refuses_a_sync_client():
    """Mixing an AsyncTokenSource into a sync client is a clear error, not a hang."""
    from permatoken._exceptions import InputError

    source = AsyncTokenSource(AsyncFakeBackend(), "acme/messaging")
    with httpx.Client(
        auth=PermatokenAuth(source), transport=httpx.MockTransport(lambda r: httpx.Response(200))
    ) as http:
        with pytest.raises(InputError, match="AsyncClient"):
            http.get("https://graph.test/me")


def test_the_body_is_replayed_on_retry():
    """The retried request carries the same JSON body."""
    backend = FakeBackend()
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(401, json=DEAD) if len(bodies) == 1 else httpx.Response(200, json={})

    with (
        TokenSource(backend, "acme/messaging") as source,
        httpx.Client(auth=PermatokenAuth(source), transport=httpx.MockTransport(handler)) as http,
    ):
        http.post("https://graph.test/x", json={"to": "1", "id": "abc"})
    assert bodies == [{"to": "1", "id": "abc"}] * 2
