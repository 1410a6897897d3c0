"""Crash safety with real processes: SIGKILL at every step boundary, then recover.

Each test rotates a 60-day system-user token in a child ``permatoken rotate`` that kills itself
right after persisting one step (``PERMATOKEN_CRASH_AT``), then starts a second process that
resumes unfinished rotations the way ``permatoken serve`` does on start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from permatoken.models import VersionState

from ._live import DAY, EXCHANGE, RESUME_SCRIPT, Sandbox, spawn_cli

NAME = "acme/messaging"
POINTS = ["obtaining", "pending", "verified", "promoted", "finalized"]
LEASE_TTL = "2.5"

pytestmark = pytest.mark.slow


def observe(store: Any, old_token: str, sandbox: Sandbox) -> list[Any]:
    """One look at the database: never two current versions, the old token never lost."""
    versions = store.versions(NAME)
    current = [v for v in versions if v.state is VersionState.CURRENT]
    assert len(current) <= 1, f"two current versions: {versions}"
    assert len(current) == 1, "no current version at all"
    old = versions[0]
    assert old.state in (VersionState.CURRENT, VersionState.PREVIOUS), old
    assert store.reveal(NAME, 1).reveal() == old_token
    assert sandbox.accepts(old_token)
    return versions


def crashed_rotation(point: str) -> subprocess.CompletedProcess[bytes]:
    proc = spawn_cli(
        "rotate", NAME, env={"PERMATOKEN_CRASH_AT": point, "PERMATOKEN_LEASE_TTL": LEASE_TTL}
    )
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def recover_while_observing(store: Any, old_token: str, sandbox: Sandbox) -> list[str]:
    """Run the recovering process; look at the database the whole time it works."""
    import os

    env = dict(os.environ) | {"PERMATOKEN_LEASE_TTL": LEASE_TTL}
    env.pop("PERMATOKEN_CRASH_AT", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", RESUME_SCRIPT, NAME],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    looks = 0
    while proc.poll() is None:
        observe(store, old_token, sandbox)
        looks += 1
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert looks > 0
    return list(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize("point", POINTS)
def test_a_rotation_killed_at_any_step_completes_on_restart(point, sandbox, add, world):
    """SIGKILL after `point` is persisted; a restarted process finishes with one refresh."""
    old_token = sandbox.token("system_user_60d")
    add(NAME, old_token)
    sandbox.advance(45 * DAY)
    before = sandbox.successes(EXCHANGE)

    crashed = crashed_rotation(point)
    assert crashed.returncode == -9, crashed.stderr.decode()
    versions = observe(world, old_token, sandbox)
    step = world.get(NAME).rotation_step
    assert step == (None if point == "finalized" else point)
    refreshes_before_recovery = sandbox.successes(EXCHANGE) - before
    assert refreshes_before_recovery == (0 if point == "obtaining" else 1)

    outcomes = recover_while_observing(world, old_token, sandbox)

    versions = observe(world, old_token, sandbox)
    assert world.get(NAME).rotation_step is None
    assert [(v.version, v.state) for v in versions] == [
        (1, VersionState.PREVIOUS),
        (2, VersionState.CURRENT),
    ]
    assert sandbox.successes(EXCHANGE) - before == 1, sandbox.calls(EXCHANGE)
    new = versions[1]
    assert sandbox.accepts(world.reveal(NAME, 2))
    assert new.meta.expires_at is not None and new.meta.is_valid
    assert outcomes == ([] if point == "finalized" else ["rotated"])
    print(f"crash at {point}: {refreshes_before_recovery} refresh before the crash, 1 in all")
