"""A `permatoken serve` killed (SIGKILL, ``PERMATOKEN_CRASH_AT``) right after each batched step:
another scheduler finishes every renewal from the persisted step, with no exchange repeated and
no version made twice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from permatoken.store.schema import credentials, versions
from scheduler.world import DAY, World

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NAMES = [f"acme/c{i}" for i in range(6)]


@pytest.mark.parametrize("step", ["obtaining", "pending", "verified", "promoted"])
def test_a_scheduler_killed_after_a_batched_step_is_finished_by_another(
    world: World, step: str
) -> None:
    for name in NAMES:
        world.add(name)
    world.advance(41 * DAY)
    env = dict(os.environ) | {
        "PERMATOKEN_GRAPH_URL": world.sandbox.url,
        "PERMATOKEN_CLOCK": "sandbox",
        "PERMATOKEN_SCHEDULER_INTERVAL": "0.2",
        "PERMATOKEN_SCHEDULER_LEASE_TTL": "5",
        "PERMATOKEN_CRASH_AT": step,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "permatoken", "serve", "--no-api", "--owner", "doomed"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stdout.decode() + proc.stderr.decode()
    with world.store.read() as conn:
        steps = set(conn.execute(sa.select(credentials.c.rotation_step)).scalars())
    if step == "promoted":
        assert steps == {None}  # promotion and the end of the rotation are one transaction
    else:
        assert step in steps
    world.advance(10)  # the dead scheduler's leases (and SQLite leadership) expire
    survivor = world.scheduler("survivor", batch=10)
    survivor.engine.resume_all()
    for _ in range(5):
        if {world.store.version(n).version for n in NAMES} == {2}:
            break
        survivor.tick()
        world.advance(10)
    for name in NAMES:
        cred = world.store.get(name)
        assert cred.rotation_step is None and cred.current_version == 2, (name, cred)
    with world.store.read() as conn:
        states = conn.execute(
            sa.select(versions.c.version, versions.c.state).order_by(versions.c.version)
        ).all()
    assert sorted(states) == sorted([(1, "previous")] * 6 + [(2, "current")] * 6)
    assert world.exchanges() == len(NAMES)
