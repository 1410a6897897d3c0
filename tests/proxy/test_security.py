"""Every bypass we could think of is refused, and no key or token leaks anywhere.

Raw sockets, so that what reaches the proxy is exactly the bytes written (HTTP clients normalise
``..`` and reject odd targets before sending). A second server stands for "another host": it
must never be reached.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from _live_sandbox import ThreadSandbox, ThreadServer
from permatoken.settings import ProxySettings

from .conftest import NAME, Proxied, until

MB = 1024 * 1024


class _Recorder:
    """An ASGI app that records every request it gets (the "other host"), or wraps the sandbox
    and records the headers each request reached it with."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.seen: list[tuple[str, dict[bytes, bytes]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.seen.append((scope["path"], dict(scope["headers"])))
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"evil"})


@pytest.fixture
def sandbox() -> Iterator[ThreadSandbox]:
    with ThreadSandbox(wrap=_Recorder) as server:
        yield server


@pytest.fixture
def evil() -> Iterator[tuple[ThreadServer, _Recorder]]:
    recorder = _Recorder()
    with ThreadServer(recorder) as server:
        yield server, recorder


def raw(url: str, request: bytes) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(head.split(b" ")[1]), body


def _get(target: str, key: str, extra: str = "") -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"{extra}Connection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    "target",
    [
        "/graph/acme/messaging/-/../../v1/keys",
        "/graph/acme/messaging/-/v25.0/%2e%2e/%2e%2e/v1/keys",
        "/graph/acme%2Fmessaging/-/v25.0/me",
        "/graph/acme/messaging/-/v25.0%2F..%2F..%2Fv1/keys",
        "/graph/acme/messaging/-//{evil}/x",
        "/graph/acme/messaging/-/http://{evil}/x",
        "/graph/acme/messaging/-/@{evil}/x",
        "/graph/acme/x/../messaging/-/v25.0/me",
        "/graph/acme/messaging/-/v25.0/me%00",
    ],
)
def test_path_tricks_are_refused(proxied: Proxied, evil: Any, sandbox: ThreadSandbox, target: str):
    server, recorder = evil
    status, body = raw(proxied.broker.url, _get(target.format(evil=server.url[7:]), proxied.key))
    assert status == 400 and b'"code":100' in body, body
    assert b"bad_path" not in body and b"permatoken: " in body
    assert recorder.seen == [] and _sandbox_seen(sandbox) == []


def _sandbox_seen(sandbox: ThreadSandbox) -> list[tuple[str, dict[bytes, bytes]]]:
    return sandbox.server.config.app.seen  # type: ignore[no-any-return]


def test_the_host_never_comes_from_the_request(proxied: Proxied, evil: Any, sandbox: ThreadSandbox):
    """An absolute-form target, a Host header, X-Forwarded-Host, X-Original-URL: the request
    still goes to the Graph URL, to the Graph path, without those headers."""
    server, recorder = evil
    other = server.url[7:]
    smuggled = (
        f"X-Forwarded-Host: {other}\r\nX-Forwarded-For: 6.6.6.6\r\nX-Original-URL: /v1/keys\r\n"
        f"X-Rewrite-URL: /v1/keys\r\nForwarded: host={other}\r\nCookie: session=1\r\n"
    )
    # An absolute-form target is not a proxy path at all (uvicorn keeps it whole): no route.
    status, _ = raw(
        proxied.broker.url, _get(f"http://{other}/graph/{NAME}/-/v25.0/me", proxied.key)
    )
    assert status == 404
    for request in (
        _get(f"/graph/{NAME}/-/v25.0/me", proxied.key).replace(
            b"Host: 127.0.0.1", f"Host: {other}".encode()
        ),
        _get(f"/graph/{NAME}/-/v25.0/me", proxied.key, smuggled),
    ):
        status, body = raw(proxied.broker.url, request)
        assert status == 200, body
    assert recorder.seen == []
    seen = _sandbox_seen(sandbox)
    assert [path for path, _ in seen] == ["/v25.0/me"] * 2
    for _, headers in seen:
        assert not {
            b"x-forwarded-host",
            b"x-forwarded-for",
            b"x-original-url",
            b"x-rewrite-url",
            b"forwarded",
            b"cookie",
        } & set(headers)
        assert headers[b"authorization"] == f"Bearer {proxied.token()}".encode()


def test_a_smuggled_request_never_runs(proxied: Proxied, sandbox: ThreadSandbox):
    """Content-Length and Transfer-Encoding together: the server reads the chunked body (empty),
    the proxy forwards that one request with that body, and the request hidden after it never
    runs (one answer on the connection)."""
    request = (
        f"POST /graph/{NAME}/-/v25.0/{proxied.phone_id}/messages HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {proxied.key}\r\nContent-Length: 40\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
        f"GET /graph/{NAME}/-/v25.0/me HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()
    host, port = proxied.broker.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 ") == 1
    seen = _sandbox_seen(sandbox)
    assert [(path, headers.get(b"content-length")) for path, headers in seen] == [
        (f"/v25.0/{proxied.phone_id}/messages", b"0")
    ]


@pytest.mark.parametrize("proxy_settings", [ProxySettings(max_body_bytes=4 * MB, replay_bytes=MB)])
def test_oversized_bodies_are_refused(proxied: Proxied, sandbox: ThreadSandbox):
    """Declared too large: 413 before reading. Streamed past the limit: 413, nothing accepted."""
    c = proxied.client()
    url = f"/v25.0/{proxied.phone_id}/media"
    r = c.post(url, content=b"x" * (5 * MB), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 413 and r.headers["x-permatoken-error"] == "body_too_large"
    assert _sandbox_seen(sandbox) == []

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, so only the stream can tell
        for _ in range(80):
            yield b"y" * (64 * 1024)

    r = c.post(url, content=chunks(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["error"]["code"] == 100
    assert proxied.state.media() == []


def test_a_late_key_field_in_a_streamed_form_is_never_forwarded(
    proxied: Proxied, sandbox: ThreadSandbox
):
    """A key in the header and another access_token field after the file: the upload stops
    before the field's value leaves, and the answer says to send the key once."""
    boundary = "b0undary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'.encode()
        + b"z" * (2 * MB)
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="access_token"\r\n\r\n'.encode()
        + proxied.key.encode()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = proxied.client().post(
        f"/v25.0/{proxied.phone_id}/media",
        content=iter([form[i : i + 65536] for i in range(0, len(form), 65536)]),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 400 and r.headers["x-permatoken-error"] == "duplicate_key"
    assert proxied.state.media() == []


def test_no_key_or_token_in_any_answer_log_or_metric(proxied: Proxied, emitted: Any):
    """Success, recovery, refusals and errors: scan everything emitted for the exact values."""
    emitted.watch(proxied.key)
    lb, c = proxied.broker, proxied.client()
    first = proxied.token()
    texts = [proxied.send(c, "one").text]
    proxied.revoke()
    texts.append(proxied.send(c, "two").text)
    texts.append(proxied.client(key="pt_" + "z" * 43).get("/v25.0/me").text)
    texts.append(c.get("/v25.0/me", params={"access_token": proxied.key}).text)  # two places
    texts.append(c.get("/../x").text)
    second = proxied.token()
    admin = lb.client(lb.key("admin"))
    until(
        lambda: any(a["action"] == "graph.request" for a in admin.get("/v1/audit").json()["items"])
    )
    texts.append(admin.get("/metrics").text)
    texts.append(admin.get("/v1/audit").text)
    texts.append(admin.get("/v1/events").text)
    for text in texts:
        emitted.add("answer", text)
    emitted.assert_absent(proxied.key, first, second)
