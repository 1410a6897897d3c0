"""The sandbox (``permatoken.sandbox``) on a real loopback socket, shared by every test package.

- :class:`ThreadServer`: any ASGI app under uvicorn on 127.0.0.1 in a background thread (the
  broker tests run ``permatoken.server`` on it); :class:`ThreadSandbox` is the sandbox on it,
  sharing its :class:`SandboxState` with the test, and :meth:`ThreadSandbox.reset` gives a
  long-lived server a fresh world between tests.
- :class:`ProcessSandbox`: the sandbox in a child process of its own, so the client under test and
  the sandbox do not share a GIL; the test drives it through the ``/_sandbox/`` control API. The
  child runs this file as a script: ``python _live_sandbox.py '{"messages_per_second": …}'``.
- :func:`seeded_state`, :class:`StateClock` (permatoken's clock read from the sandbox's state),
  :class:`ToSandbox` (an httpx transport that sends ``graph.facebook.com`` to the sandbox).

Listening sockets are created with ``IPPROTO_TCP`` so that asyncio sets TCP_NODELAY on accepted
connections (otherwise every answer with a body waits ~40 ms for a delayed ACK). Every server
here is a context manager (or has ``start``/``stop`` / ``close``): use it so none outlives its test.
:func:`still_running` lists the ones started and not stopped (the root conftest checks it is
empty when the session ends).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn

from permatoken.sandbox import SandboxConfig, SandboxState, create_app

#: Servers started and not yet stopped (threads or child processes).
_running: set[object] = set()


def still_running() -> list[str]:
    """A description of every server started here and not stopped yet."""
    return [f"{type(s).__name__} at {getattr(s, 'url', '?')}" for s in list(_running)]


def loopback_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1 (not listening yet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def seeded_state(config: SandboxConfig | None = None, *, at: float | None = None) -> SandboxState:
    """A seeded sandbox state; its clock frozen at ``at`` if given, else the real clock."""
    state = SandboxState(config=config)
    if at is not None:
        state.clock.freeze(at)
    state.seed()
    return state


class StateClock:
    """permatoken's clock = the sandbox's clock (read straight from the state, no HTTP)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.state.clock.now(), dt.UTC)


# --- in a thread ----------------------------------------------------------------------------


class ThreadServer:
    """``app`` under a real uvicorn on 127.0.0.1 (random port), in a background thread."""

    def __init__(
        self,
        app: Any,
        *,
        sock: socket.socket | None = None,
        lifespan: str = "off",
        timeout_graceful_shutdown: int | None = None,
        start_timeout: float = 20,
        stop_timeout: float = 10,
    ) -> None:
        self.sock = sock if sock is not None else loopback_socket()
        self.url = url_of(self.sock)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
            timeout_graceful_shutdown=timeout_graceful_shutdown,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout

    def start(self) -> Self:
        _running.add(self)
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start ({type(self).__name__})")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread (forcing it if it lingers)."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=self.stop_timeout)
            if self.thread.is_alive():
                self.server.force_exit = True
                self.thread.join(timeout=self.stop_timeout)
        self.sock.close()
        if not self.thread.is_alive():
            _running.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadSandbox(ThreadServer):
    """The sandbox on a :class:`ThreadServer`; ``state`` is the very state it serves.

    Without a state it serves a freshly seeded one on the real clock.
    """

    def __init__(
        self, state: SandboxState | None = None, *, wrap: Callable[[Any], Any] | None = None
    ) -> None:
        """``wrap`` puts ASGI middleware around the sandbox (e.g. to hold calls in a test)."""
        self.state = state if state is not None else seeded_state()
        sock = loopback_socket()
        self.state.graph_url = url_of(sock)
        app = create_app(self.state)
        super().__init__(wrap(app) if wrap is not None else app, sock=sock)

    def reset(self, config: SandboxConfig | None = None) -> dict[str, Any]:
        """A fresh world (objects, tokens, logs, faults, counters, config); the fixtures dict.

        The clock is left as it is.
        """
        with self.state.lock:
            self.state.config = config or SandboxConfig()
            return self.state.reset()


# --- in a child process -----------------------------------------------------------------------


class ProcessSandbox:
    """The sandbox in a child process (this file as a script), driven through ``/_sandbox/``."""

    def __init__(self, **config: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), json.dumps(config)],
            stdout=subprocess.PIPE,
        )
        _running.add(self)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self._end_process()
            raise RuntimeError("the sandbox process did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.fixtures: dict[str, Any] = info["fixtures"]
        self.http = httpx.Client(base_url=self.url + "/_sandbox", timeout=30)

    def _end_process(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        _running.discard(self)

    def close(self) -> None:
        self.http.close()
        self._end_process()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        params = {"endpoint": endpoint} if endpoint else None
        return self._json("GET", "/calls", params=params)["data"]  # type: ignore[no-any-return]

    def messages(self) -> list[dict[str, Any]]:
        return self._json("GET", "/messages")["data"]  # type: ignore[no-any-return]

    def clear_logs(self) -> None:
        self._json("DELETE", "/calls")

    def revoke(self, value: str) -> None:
        self._json("POST", "/tokens/revoke", json={"value": value})

    def create_token(self, **spec: Any) -> dict[str, Any]:
        return self._json("POST", "/tokens", json=spec)  # type: ignore[no-any-return]

    def configure(self, **changes: Any) -> None:
        self._json("PATCH", "/config", json=changes)

    def fault(self, **spec: Any) -> dict[str, Any]:
        return self._json("POST", "/faults", json=spec)  # type: ignore[no-any-return]


def _serve_in_this_process(changes: dict[str, Any]) -> None:
    """The child of :class:`ProcessSandbox`: print ``{"url", "fixtures"}``, serve until killed."""
    state = SandboxState(config=SandboxConfig(**changes))
    sock = loopback_socket()
    sock.listen(4096)
    state.graph_url = url_of(sock)
    fixtures = state.seed()
    print(json.dumps({"url": state.graph_url, "fixtures": fixtures}), flush=True)
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock])


# --- talking to it ----------------------------------------------------------------------------


class ToSandbox(httpx.HTTPTransport):
    """Rewrites ``https://graph.facebook.com/...`` to the sandbox's loopback address.

    For libraries (pywa) that hard-code Meta's URL but accept an ``httpx.Client``.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.target = httpx.URL(base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self.target.scheme, host=self.target.host, port=self.target.port
        )
        return super().handle_request(request)


if __name__ == "__main__":
    _serve_in_this_process(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
