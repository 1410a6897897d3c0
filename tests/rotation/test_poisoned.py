"""One poisoned credential never takes the broker down for every tenant.

The store is left as an older permatoken left it after a token exchange answered a ~100 KB
"token": that value stored as ``pending`` with the rotation step at ``pending``. Verification
could not even build the debug_token URL, so every later ``rotate``/``revoke`` exited 70 and a
restarted ``permatoken serve`` exited 70 during start-up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from permatoken._secret import Secret
from permatoken.models import Health, VersionMeta, VersionState

from ._live import DAY, EXCHANGE

POISONED = "acme/poisoned"
HEALTHY = "globex/healthy"
HUGE = "EAA" + "A" * 100_000


def poison(store) -> None:
    """What the old engine persisted before it crashed in verification."""
    assert store.acquire_lease(POISONED, "old-permatoken", 60)
    pending = store.add_pending(POISONED, Secret(HUGE), VersionMeta(token_type="SYSTEM_USER"))
    detail = {"attempt": 1, "reason": "scheduled", "from_version": 1, "version": pending.version}
    store.set_rotation(POISONED, "old-permatoken", "pending", detail, health=Health.RENEWING)
    store.release_lease(POISONED, "old-permatoken")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ) | {"NO_COLOR": "1"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            pytest.fail(f"permatoken serve exited {proc.returncode} during start-up:\n{err}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling an observable condition (the health endpoint)
    proc.kill()
    pytest.fail("permatoken serve did not answer /healthz within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.stderr.read().decode() if proc.stderr else ""


@pytest.mark.slow
def test_a_poisoned_credential_is_isolated_and_serve_restarts(sandbox, add, world, run_cli):
    add(POISONED, sandbox.token("system_user_60d"))
    add(HEALTHY, sandbox.state.create_token("system_user_60d")["value"])
    poison(world)

    # The CLI on the poisoned credential: a clear failure, never exit 70 or a traceback.
    rotated = run_cli("rotate", POISONED)
    assert rotated.rc not in (0, 70) and "Traceback" not in rotated.stderr, rotated
    assert "longer than 8192 bytes" in rotated.stdout + rotated.stderr
    assert [(v.version, v.state) for v in world.versions(POISONED)] == [
        (1, VersionState.CURRENT),
        (2, VersionState.RETIRED),
    ]
    revoked = run_cli("revoke", POISONED, "--version", "2", "--yes")
    assert revoked.rc != 70 and "Traceback" not in revoked.stderr, revoked

    # A second poisoned pending, then a restart: serve comes up and carries on.
    poison(world)
    port = free_port()
    proc = start_serve(port)
    try:
        cred = world.get(POISONED)
        assert cred.rotation_step is None and cred.health is Health.FAILING
        assert "longer than 8192 bytes" in (cred.health_reason or "")
        assert world.version(POISONED).version == 1
        assert world.version(POISONED, 3).state is VersionState.RETIRED
        status = {s["name"]: s for s in run_cli("status", "--json").json()}
        assert status[POISONED]["health"] == "failing"
        # The other tenant's credential still renews while serve runs.
        sandbox.advance(45 * DAY)
        out = run_cli("rotate", HEALTHY)
        assert out.rc == 0, out
        assert world.version(HEALTHY).version == 2 and sandbox.successes(EXCHANGE) >= 1
        status = {s["name"]: s for s in run_cli("status", "--json").json()}
        assert status[HEALTHY]["health"] == "ok"
    finally:
        stderr = stop(proc)
    assert HUGE[:40] not in stderr and "Traceback" not in stderr


def test_resume_all_isolates_a_credential_it_cannot_resume(sandbox, add, world, engine, store_url):
    """A pending row that cannot even be decrypted: marked failing with the reason, and the
    other credential's unfinished rotation still completes in the same start-up pass."""
    import sqlalchemy as sa

    from conftest import connect

    add(POISONED, sandbox.token("system_user_60d"))
    add(HEALTHY, sandbox.state.create_token("system_user_60d")["value"])
    poison(world)
    with connect(store_url) as conn:  # vandalise the pending ciphertext
        conn.execute(sa.text("UPDATE versions SET ciphertext = :c WHERE version = 2"), {"c": b"x"})
    assert world.acquire_lease(HEALTHY, "old-permatoken", 60)
    world.set_rotation(HEALTHY, "old-permatoken", "obtaining", {"attempt": 1, "from_version": 1})
    world.release_lease(HEALTHY, "old-permatoken")
    sandbox.advance(45 * DAY)

    outcomes = {o.name: o for o in engine.resume_all()}
    assert outcomes[POISONED].status == "failed"
    assert "cannot decrypt" in outcomes[POISONED].message
    assert (outcomes[HEALTHY].status, outcomes[HEALTHY].version) == ("rotated", 2)
    cred = world.get(POISONED)
    assert cred.health is Health.FAILING and "cannot decrypt" in (cred.health_reason or "")
    assert world.version(POISONED).version == 1
