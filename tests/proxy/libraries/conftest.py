"""Real processes: a sandbox process, ``permatoken serve`` (scheduler off) in another, and the
library under test in this one (or in Node). The world is ``client._support``'s: a mintable
``acme/messaging`` credential in a SQLite store, and an app key granted ``acme/*``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client._broker import free_port
from client._support import MINT, NAME, SEND, World
from client.conftest import (  # noqa: F401  (the SDK tests' process world)
    anyio_backend,
    api_key,
    sandbox,
    sandbox_config,
    store,
    world,
)

__all__ = ["MINT", "NAME", "SEND", "Serve"]


class Serve:
    """``permatoken serve --no-scheduler --access-log`` with the world's settings; its output
    goes to a file, to scan for secrets."""

    def __init__(self, out: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = out
        with out.open("wb") as sink:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "permatoken",
                    "serve",
                    "--port",
                    str(self.port),
                    "--no-scheduler",
                    "--access-log",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.output()[-2000:]
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "permatoken serve did not start"
            time.sleep(0.05)

    def base_url(self, name: str = NAME) -> str:
        return f"{self.url}/graph/{name}/-"

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve_env() -> dict[str, str]:
    """Override to set PERMATOKEN_PROXY__* for the serve process."""
    return {}


@pytest.fixture
def serve(
    world: World,  # noqa: F811
    tmp_path: Path,
    serve_env: dict[str, str],
    api_key: str,  # noqa: F811
    emitted: Any,
) -> Iterator[Serve]:
    s = Serve(tmp_path / "serve.log", serve_env)
    try:
        yield s
    finally:
        s.stop()
        emitted.add("permatoken serve output", s.output())
        emitted.watch(api_key, world.token)


def exactly_once(w: World, texts: list[str]) -> None:
    """Each text accepted once, one mint, and Meta saw: ok, the dead token, ok (retried)."""
    assert w.sandbox.accepted_bodies() == texts
    assert w.sandbox.mints() == 1
    assert [c["error_code"] for c in w.sandbox.calls(SEND)] == [None, 190, None]
