"""Two `permatoken serve` processes on one PostgreSQL: a rotation on B wakes a long-poll on A."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _waiting import wait_for
from permatoken.server.keystore import KeyStore
from permatoken.settings import load_settings
from permatoken.store import Store, open_store

from .test_reports import mintable

pytestmark = pytest.mark.postgres


class Replica:
    def __init__(self, env: dict[str, str], name: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "permatoken",
                "serve",
                "--port",
                "0",
                "--no-scheduler",
                "--owner",
                name,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, (
            f"replica {name} did not start: {line!r} "
            f"{self.proc.stderr.read() if self.proc.stderr else ''}"
        )
        self.url = f"http://127.0.0.1:{m.group(1)}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz").json()["checks"].get("notifications"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica {name} never became ready with LISTEN connected")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def _waiters(url: str, headers: dict[str, str]) -> float:
    """The replica's ``permatoken_waiters`` gauge (long-polls and streams waiting)."""
    text = httpx.get(url + "/metrics", headers=headers).text
    m = re.search(r"^permatoken_waiters (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


@pytest.fixture
def pg_store(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    from conftest import init_store

    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", pg_url)
    settings = load_settings()
    init_store(settings)
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def test_a_rotation_on_replica_b_wakes_a_long_poll_on_replica_a(
    pg_store: Store, sandbox: Any, world: dict[str, Any], emitted: Any
) -> None:
    """A waits (after_version=1, wait=30); B rotates; A answers 200 with v2, not a 304."""
    mintable(pg_store, world, sandbox)
    admin = KeyStore(pg_store).create("admin", actor="test")[1].reveal()
    env = dict(os.environ) | {
        "PERMATOKEN_GRAPH_URL": sandbox.url,
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    a, b = Replica(env, "replica-a"), Replica(env, "replica-b")
    try:
        headers = {"Authorization": f"Bearer {admin}"}
        assert httpx.get(a.url + "/v1/tokens/acme/wa", headers=headers).json()["version"] == 1
        result: dict[str, Any] = {}

        def wait() -> None:
            result["r"] = httpx.get(
                a.url + "/v1/tokens/acme/wa",
                params={"after_version": 1, "wait": 30},
                headers=headers,
                timeout=40,
            )

        waiter = threading.Thread(target=wait)
        waiter.start()
        # Rotate on B only once A's long-poll is parked (its gauge rises in the same step as
        # it registers), so the cross-replica notification is what answers it.
        wait_for(
            lambda: _waiters(a.url, headers) >= 1, what="the long-poll on replica A to be waiting"
        )
        rotated = httpx.post(
            b.url + "/v1/credentials/acme/wa/rotate",
            json={"force": True},
            headers=headers,
            timeout=30,
        )
        emitted.add("rotate on B", rotated.text)
        assert rotated.status_code == 200 and rotated.json()["status"] == "rotated", rotated.text
        waiter.join(timeout=40)
        r = result["r"]
        assert r.status_code == 200, "the waiter on A timed out instead of being woken"
        assert r.json()["version"] == 2
    finally:
        for name, replica in (("A", a), ("B", b)):
            emitted.add(f"stderr of replica {name}", replica.stop())
    with sandbox.state.lock:
        emitted.watch(*sandbox.state.tokens)
    emitted.watch(admin)
