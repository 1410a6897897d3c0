"""Helpers shared by the sandbox tests: a seeded state on a frozen clock, a live server."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import uvicorn

from permatoken.sandbox import SandboxConfig, SandboxState, create_app

#: 2026-07-29 10:00:00 PDT, a Wednesday in daylight-saving time.
SUMMER = dt.datetime(2026, 7, 29, 17, 0, 0, tzinfo=dt.UTC).timestamp()
#: 2026-01-15 10:00:00 PST.
WINTER = dt.datetime(2026, 1, 15, 18, 0, 0, tzinfo=dt.UTC).timestamp()


def make_state(config: SandboxConfig | None = None, at: float = SUMMER) -> SandboxState:
    state = SandboxState(config=config)
    state.clock.freeze(at)
    state.seed()
    return state


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    """The sandbox under a real uvicorn on 127.0.0.1, in a background thread."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        state.graph_url = self.url
        config = uvicorn.Config(
            create_app(state), log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
