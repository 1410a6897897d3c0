"""A real sandbox server for the renewal tests, and helpers to drive permatoken against it.

The engine talks to Meta with a *sync* httpx client, and the crash and concurrency tests run
permatoken in child processes, so the sandbox must listen on a real socket: one
``_live_sandbox.ThreadSandbox`` per test directory (session scope), reset before every test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _live_sandbox import ThreadSandbox
from permatoken._secret import Secret
from permatoken.sandbox import SandboxState
from permatoken.sandbox.auth import token_problem

EXCHANGE = "GET /oauth/access_token"
MINT = "POST /{system-user-id}/access_tokens"
DEBUG = "GET /debug_token"
DAY = 86400


@dataclass
class Sandbox:
    """One test's view of the (freshly reset) sandbox."""

    url: str
    state: SandboxState
    fx: dict[str, Any]

    @property
    def app(self) -> dict[str, Any]:
        return self.fx["apps"][0]

    def token(self, kind: str) -> str:
        return str(self.fx["tokens"][kind]["value"])

    def system_user(self, business: int = 0) -> str:
        biz = self.fx["businesses"][business]["id"]
        return next(u["id"] for u in self.fx["system_users"] if u["business_id"] == biz)

    def calls(
        self, endpoint: str | None = None, *, status: int | None = None
    ) -> list[dict[str, Any]]:
        return [c for c in self.state.calls(endpoint) if status is None or c["status"] == status]

    def successes(self, endpoint: str) -> int:
        """How many calls of ``endpoint`` the sandbox answered with 200."""
        return len(self.calls(endpoint, status=200))

    def advance(self, seconds: float) -> None:
        self.state.clock.advance(seconds)

    def accepts(self, value: str | Secret) -> bool:
        """Would Meta (the sandbox) accept this token right now? Same check as debug_token."""
        raw = value.reveal() if isinstance(value, Secret) else value
        token = self.state.token(raw)
        return token is not None and token_problem(token, self.state.clock.now()) is None

    def fault(self, endpoint: str, **spec: Any) -> None:
        self.state.inject_fault(endpoint, **spec)


def live_sandbox_fixture() -> Iterator[ThreadSandbox]:
    with ThreadSandbox() as server:
        yield server


def sandbox_fixture(live: ThreadSandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Reset the world; point permatoken (and its child processes) at the sandbox and its clock."""
    fx = live.reset()
    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", live.url)
    monkeypatch.setenv("PERMATOKEN_CLOCK", "sandbox")
    return Sandbox(live.url, live.state, fx)


def write_secret(directory: Path, name: str, value: str) -> Path:
    path = directory / name
    path.write_text(value)
    path.chmod(0o600)
    return path


def spawn_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -m permatoken ARGS`` without waiting (for crashes and races)."""
    full = dict(os.environ) | {"COLUMNS": "200", "NO_COLOR": "1"} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "permatoken", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
    )


#: A recovering process as `permatoken serve` starts: resume every unfinished rotation. It keeps
#: trying until the dead worker's lease has expired (resume_all skips leased credentials).
RESUME_SCRIPT = """
import json, sys, time
from permatoken.settings import load_settings
from permatoken.store import open_store
from permatoken.service import build_engine
settings = load_settings()
store = open_store(settings)
engine = build_engine(settings, store)
outcomes = []
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    outcomes += [o.status for o in engine.resume_all()]
    owner, _ = store.lease_holder(sys.argv[1])
    if not store.unfinished_rotations() and owner is None:
        break
    if owner is not None and not store.unfinished_rotations():
        # A finished rotation whose worker died before releasing the lease: let it lapse.
        if store.acquire_lease(sys.argv[1], engine.owner, 1):
            store.release_lease(sys.argv[1], engine.owner)
            break
    time.sleep(0.1)
print(json.dumps(outcomes))
engine.close()
store.close()
"""


def run_resume(name: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"NO_COLOR": "1"}
    env.pop("PERMATOKEN_CRASH_AT", None)
    return subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, name],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
