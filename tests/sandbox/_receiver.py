"""A real HTTP receiver on a free loopback port: the app's side of webhooks and callbacks.

It answers Meta's verification handshake like a correct endpoint (200 + the challenge when the
verify token matches, else 403), records every request, and answers POSTs with the statuses a
test queues (200 once the queue is empty). Tests wait on :meth:`Receiver.wait_for` (a condition
with a generous timeout), never on sleeps. ``hold`` makes POSTs block until ``release``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

WAIT = 15.0


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    def __init__(self, verify_token: str = "verify-me") -> None:
        self.verify_token = verify_token
        self.echo_challenge = True
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque()
        self.cond = threading.Condition()
        self.gate = threading.Event()
        self.gate.set()
        #: Set when a POST arrives, before it waits for the gate.
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                ok = query.get("hub.verify_token") == [receiver.verify_token]
                challenge = query.get("hub.challenge", [""])[0]
                body = (challenge if receiver.echo_challenge else "hello").encode()
                self._answer(200 if ok else 403, body if ok else b"forbidden", b"")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.arrived.set()
                receiver.gate.wait()  # opened by the test, or when the receiver stops
                with receiver.cond:
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                self._answer(status, b"ok", raw)

            def _answer(self, status: int, body: bytes, raw: bytes) -> None:
                split = urlsplit(self.path)
                seen = Received(
                    self.command,
                    split.path,
                    parse_qs(split.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    raw,
                    status,
                )
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with receiver.cond:
                    receiver.requests.append(seen)
                    receiver.cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)

    def posts(self, path: str | None = None) -> list[Received]:
        with self.cond:
            return [r for r in self.requests if r.method == "POST" and path in (None, r.path)]

    def wait_for(self, count: int, path: str | None = None) -> list[Received]:
        """Wait until ``count`` POSTs (to ``path``) were answered; fail after a generous timeout."""
        with self.cond:
            done = self.cond.wait_for(
                lambda: (
                    len([r for r in self.requests if r.method == "POST" and path in (None, r.path)])
                    >= count
                ),
                timeout=WAIT,
            )
        got = self.posts(path)
        assert done, f"expected {count} deliveries, got {len(got)}"
        return got
