"""``serve``: run the sandbox under uvicorn and publish its fixtures.

The socket is bound and listening *before* the fixtures are written and the two lines printed,
so a script that waits for "sandbox listening on" can connect at once (and port 0 works).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from permatoken.sandbox.app import create_app
from permatoken.sandbox.config import SandboxConfig
from permatoken.sandbox.dispatch import DroppedConnection
from permatoken.sandbox.state import SandboxState


class _QuietDrops(logging.Filter):
    """Injected dropped connections are on purpose; keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def write_fixtures(path: Path, fixtures: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) with mode 0600: the file holds live secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(fixtures, handle, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - naming the wildcard, not binding it
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def serve(
    host: str,
    port: int,
    fixtures_out: Path | None,
    *,
    seed: bool = True,
    config: SandboxConfig | None = None,
) -> None:
    """Serve the sandbox until interrupted; ``port=0`` picks a free port."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # TCP, and without it every response with a body waits ~40 ms for delayed ACKs (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    actual_port = sock.getsockname()[1]

    state = SandboxState(config=config)
    state.graph_url = f"http://{_url_host(host)}:{actual_port}"
    if seed:
        state.seed()
    app = create_app(state)
    if fixtures_out is not None:
        write_fixtures(Path(fixtures_out), state.fixtures())
    print(f"sandbox listening on {state.graph_url}", flush=True)
    if fixtures_out is not None:
        print(f"fixtures written to {fixtures_out}", flush=True)

    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    finally:
        state.webhooks.close(timeout=1.0)
        sock.close()
        sys.stdout.flush()
