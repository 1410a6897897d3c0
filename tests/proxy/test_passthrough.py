"""What passes through untouched, what is signed, and what is never sent twice."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _live_sandbox import ThreadSandbox
from permatoken.settings import ProxySettings

from .conftest import MINT, SEND, Proxied

DEBUG = "GET /debug_token"


@pytest.mark.parametrize(
    ("code", "status"),
    [(4, 400), (80007, 400), (130429, 429), (131056, 400), (613, 400), (10, 403), (100, 400)],
)
def test_throttles_and_other_errors_pass_through_and_renew_nothing(
    proxied: Proxied, code: int, status: int
):
    """Meta's status, body and headers come back as they are; no debug_token, no mint, no retry."""
    proxied.state.inject_fault(SEND, code=code, http_status=status)
    r = proxied.send(proxied.client(), "slow down")
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert "x-fb-trace-id" in r.headers and "www-authenticate" in r.headers
    assert "x-permatoken-error" not in r.headers
    assert proxied.sends() == [code]  # sent once
    assert proxied.state.calls(DEBUG) == [] and proxied.state.calls(MINT) == []
    assert proxied.send(proxied.client(), "later").status_code == 200


def test_usage_headers_come_back(proxied: Proxied):
    r = proxied.send(proxied.client(), "hello")
    assert r.status_code == 200 and "x-app-usage" in r.headers
    assert "x-business-use-case-usage" in r.headers


def test_the_proof_is_computed_for_the_real_token(proxied: Proxied):
    """An app that requires appsecret_proof: the client's proof (over its key) is replaced by the
    proof of the Meta token, in the classic or the time-stamped form the client asked for."""
    with proxied.state.lock:
        for app in proxied.state.apps.values():
            app.require_app_secret = True
    c = proxied.client()
    assert proxied.send(c, "plain").status_code == 200
    r = proxied.send(c, "bogus proof", params={"appsecret_proof": "0" * 64})
    assert r.status_code == 200, r.text
    r = proxied.send(c, "timed", params={"appsecret_proof": "0" * 64, "appsecret_time": "1"})
    assert r.status_code == 200, r.text
    assert proxied.accepted() == ["plain", "bogus proof", "timed"]
    # The sandbox does check: once Meta's secret differs from the one permatoken holds, it refuses.
    with proxied.state.lock:
        for app in proxied.state.apps.values():
            app.secret = "rotated-on-meta-side"
    r = proxied.send(c, "wrong secret")
    assert r.json()["error"]["code"] == 100 and "appsecret_proof" in r.json()["error"]["message"]
    assert proxied.accepted() == ["plain", "bogus proof", "timed"]


def test_a_token_echoed_by_meta_is_masked(proxied: Proxied):
    """'Malformed access token EAA…' in the body or WWW-Authenticate never reaches the client."""
    token = proxied.token()
    message = f"Malformed access token {token}"
    proxied.state.inject_fault(
        SEND,
        kind="respond",
        http_status=400,
        json={"error": {"message": message, "type": "OAuthException", "code": 100}},
        headers={"www-authenticate": f'OAuth "Facebook Platform" "invalid_request" "{message}"'},
    )
    r = proxied.send(proxied.client(), "x")
    assert r.status_code == 400
    assert token not in r.text and token not in str(r.headers)
    assert r.json()["error"]["message"] == "Malformed access token " + "*" * len(token)


class _ProcessThenDrop:
    """Around the sandbox: the next send is carried out, then the connection drops mid-answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.armed = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (self.armed and scope["type"] == "http" and scope["path"].endswith("/messages")):
            await self.app(scope, receive, send)
            return
        self.armed = False

        async def swallow(message: Any) -> None:
            pass

        await self.app(scope, receive, swallow)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"500")]}
        )
        await send({"type": "http.response.body", "body": b'{"messaging', "more_body": True})
        raise ConnectionAbortedError("connection lost after the send was carried out")


@pytest.fixture
def sandbox() -> Iterator[ThreadSandbox]:
    with ThreadSandbox(wrap=_ProcessThenDrop) as server:
        yield server


def test_a_lost_answer_is_never_replayed(proxied: Proxied, sandbox: ThreadSandbox):
    """Meta carried the send out and the connection died: 502 upstream_lost, sent exactly once."""
    sandbox.server.config.app.armed = True  # type: ignore[attr-defined]
    r = proxied.send(proxied.client(), "exactly once")
    assert r.status_code == 502
    assert r.headers["x-permatoken-error"] == "upstream_lost"
    error = r.json()["error"]
    assert error["code"] == 1 and error["is_transient"] is False
    assert "not sent again" in error["message"]
    assert proxied.accepted() == ["exactly once"]
    assert len(proxied.state.calls(SEND)) == 1


class _Swallow:
    """A TCP relay in front of the sandbox that passes each request on, waits for Meta's answer,
    and closes the client's connection without a byte of it (lost before any answer)."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.relayed = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with client:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += client.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        (
                            line.split(b":")[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        b"0",
                    )
                )
                while len(body) < length:
                    body += client.recv(65536)
                with socket.create_connection(self.target) as meta:
                    meta.sendall(head + b"\r\n\r\n" + body)
                    meta.recv(65536)  # Meta answered: the send was carried out
                self.relayed += 1

    def close(self) -> None:
        self.sock.close()


def test_a_connection_lost_before_any_answer_is_never_replayed(proxied: Proxied):
    """The send reached Meta and was carried out; the connection died before a byte of the
    answer came back: 502 upstream_lost, and Meta got it exactly once."""
    relay = _Swallow(proxied.proxy.upstream.base_url)
    proxied.proxy.upstream.base_url = relay.url
    try:
        r = proxied.send(proxied.client(), "exactly once, no answer")
    finally:
        relay.close()
    assert (r.status_code, r.headers["x-permatoken-error"]) == (502, "upstream_lost")
    assert proxied.accepted() == ["exactly once, no answer"] and relay.relayed == 1


@pytest.mark.parametrize("proxy_settings", [ProxySettings(timeout=0.5)])
def test_a_timeout_after_sending_is_never_replayed(proxied: Proxied):
    proxied.state.inject_fault(SEND, kind="timeout", timeout_seconds=5)
    r = proxied.send(proxied.client(), "slow")
    assert (r.status_code, r.headers["x-permatoken-error"]) == (504, "upstream_timeout")
    assert len(proxied.state.calls(SEND)) == 1


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_an_unreachable_graph_api_is_a_transient_502(proxied: Proxied):
    """No connection could be made: nothing was sent, so it is safe to retry (code 2)."""
    proxied.proxy.upstream.base_url = _closed_port()
    r = proxied.send(proxied.client(), "nowhere")
    assert (r.status_code, r.headers["x-permatoken-error"]) == (502, "upstream_unreachable")
    assert r.json()["error"]["code"] == 2 and r.json()["error"]["is_transient"] is True
    assert "nothing was sent" in r.json()["error"]["message"]


def test_a_wrong_graph_path_is_a_2500_that_renews_nothing(proxied: Proxied):
    """A programming error (a path Graph does not know) is Meta's 2500 "Unknown path components":
    it comes back as it is, with no debug_token, no renewal and the same token afterwards."""
    token = proxied.token()
    c = proxied.client()
    r = c.get(f"/v25.0/{proxied.phone_id}/no/such/edge")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 2500
    assert token not in r.text
    assert proxied.state.calls(DEBUG) == [] and proxied.state.calls(MINT) == []
    assert proxied.token() == token
    assert proxied.send(c, "after the typo").status_code == 200
    assert proxied.accepted() == ["after the typo"]
