"""Serve the sandbox in its own process: ``python _sandbox_proc.py '{"messages_per_second": …}'``.

Prints one JSON line ``{"url": …, "fixtures": …}`` once the socket listens, then serves until
killed. A process of its own keeps the client under test and the sandbox from sharing a GIL.
The listening socket is created with ``IPPROTO_TCP`` so that asyncio sets TCP_NODELAY on
accepted connections (otherwise every answer waits ~40 ms for a delayed ACK).
"""

from __future__ import annotations

import json
import socket
import sys

import uvicorn

from permatoken.sandbox import SandboxConfig, SandboxState, create_app


def main() -> None:
    changes = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    state = SandboxState(config=SandboxConfig(**changes))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    state.graph_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fixtures = state.seed()
    print(json.dumps({"url": state.graph_url, "fixtures": fixtures}), flush=True)
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
