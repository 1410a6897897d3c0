"""What stops two replicas renewing one token version twice: each layer proven on its own.

1. Claiming (PostgreSQL): ``FOR UPDATE SKIP LOCKED`` and the lease in one transaction, so
   replicas claiming at the same moment take disjoint rows without waiting for each other.
2. The re-check before work: the lease is re-taken and the credential must still be due at the
   version seen when it was claimed, so a claim that outlived its lease is dropped unworked.
3. The engine: ``rotate(expected_version=…)`` under the lease does nothing once the version
   moved, and nothing while another owner holds the lease.

The replica tests run all three together, where any one hides a hole in another.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from _waiting import pg_lock_waiters
from permatoken.meta.graph import GraphClient
from permatoken.rotation import RenewalEngine, RotationOutcome
from permatoken.scheduler import PolicyLayers, Scheduler
from permatoken.scheduler.core import TickReport
from scheduler.world import DAY, World

NAME = "acme/wa"


class RecordingEngine(RenewalEngine):
    """A renewal engine that remembers every rotation the scheduler asked it for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, int | None]] = []

    def rotate(self, name: str, **kwargs: Any) -> RotationOutcome:
        self.asked.append((name, kwargs.get("expected_version")))
        return super().rotate(name, **kwargs)


def _replica(world: World, owner: str) -> tuple[Scheduler, RecordingEngine]:
    graph = GraphClient(world.sandbox.url, "v25.0", clock=world.state.clock.now)
    policies = PolicyLayers(world.settings, world.store)
    engine = RecordingEngine(
        world.store,
        graph,
        clock=world.clock,
        owner=owner,
        lease_ttl=60,
        policy_resolver=policies.for_credential,
    )
    world.engines.append(engine)
    sched = Scheduler(
        world.settings, world.store, engine, policies=policies, clock=world.clock, lease_ttl=60
    )
    world.schedulers.append(sched)
    return sched, engine


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_replicas_claiming_at_the_same_moment_take_disjoint_rows_without_waiting(
    world: World, store_url: str
) -> None:
    """Layer 1 alone. Replica A has selected its batch but not yet written its leases when B
    claims: B skips A's rows (no waiting on A's locks) and takes the rest, nothing twice."""
    for i in range(15):
        world.add(f"acme/c{i:02d}")
    a = world.scheduler("a", batch=10, lease_ttl=60)
    b = world.scheduler("b", batch=10, lease_ttl=60)
    world.advance(41 * DAY)
    now = world.now()
    selected, resume = threading.Event(), threading.Event()

    def pause_a_after_its_select(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name == "replica-a" and statement.lstrip().startswith(
            "SELECT credentials.id"
        ):
            selected.set()
            resume.wait(60)

    claims: dict[str, set[str]] = {}

    def claim(sched: Scheduler, key: str) -> None:
        claims[key] = {c.name for c in sched.claim(now)}

    ta = threading.Thread(target=claim, args=(a, "a"), name="replica-a")
    tb = threading.Thread(target=claim, args=(b, "b"), name="replica-b")
    sa.event.listen(world.store.engine, "after_cursor_execute", pause_a_after_its_select)
    try:
        ta.start()
        assert selected.wait(30), "replica A never selected its batch"
        tb.start()
        # B either finishes on its own, or shows up waiting for A's row locks.
        deadline = time.monotonic() + 60
        while tb.is_alive() and not pg_lock_waiters(store_url) and time.monotonic() < deadline:
            time.sleep(0.02)
        b_waited = tb.is_alive()
    finally:
        resume.set()
        ta.join(30)
        tb.join(30)
        sa.event.remove(world.store.engine, "after_cursor_execute", pause_a_after_its_select)
    assert not b_waited, "replica B waited for A's row locks instead of skipping them"
    assert len(claims["a"]) == 10 and len(claims["b"]) == 5, claims
    assert not claims["a"] & claims["b"], f"claimed twice: {sorted(claims['a'] & claims['b'])}"


def test_a_claim_that_outlived_its_lease_is_dropped_before_the_engine_sees_it(
    world: World,
) -> None:
    """Layer 2 alone. A claims, then stalls past its lease; B claims the credential. A's claim
    is dropped while B holds the lease, after B renewed, and even once the credential is due
    again at the new version: A's engine is never asked to rotate, whatever it would do."""
    world.add(NAME)
    a, a_engine = _replica(world, "a")
    b, b_engine = _replica(world, "b")
    world.advance(41 * DAY)
    [stale] = a.claim(world.now())
    assert stale.version == 1
    world.advance(61)  # A's lease has expired
    [fresh] = b.claim(world.now())
    report = TickReport()
    a._work(stale, report)  # B holds the lease
    assert report.skipped == 1 and a_engine.asked == []
    b._work(fresh, TickReport())
    b.store.release_lease(NAME, b.owner)
    assert b_engine.asked == [(NAME, 1)] and world.store.version(NAME).version == 2
    a._work(stale, report)  # the lease is free again, but nothing is due any more
    assert report.skipped == 2 and a_engine.asked == []
    world.store.update_credential(NAME, next_due_at=world.now())
    a._work(stale, report)  # due again, but for version 2: not the work A claimed
    assert report.skipped == 3 and a_engine.asked == []
    assert world.exchanges() == 1


def test_the_engine_renews_a_version_once_and_never_under_another_owners_lease(
    world: World,
) -> None:
    """Layer 3 alone. A rotation for a version that is no longer current, or while another
    owner holds the lease, makes no upstream call."""
    world.add(NAME)
    first, second = world.engine("one"), world.engine("two")
    assert first.rotate(NAME, expected_version=1).status == "rotated"
    assert second.rotate(NAME, expected_version=1, wait=False).status == "already_rotated"
    assert world.exchanges() == 1
    assert world.store.acquire_lease(NAME, "someone-else", 60)
    assert second.rotate(NAME, expected_version=2, wait=False).status == "busy"
    assert world.exchanges() == 1
    assert world.store.version(NAME).version == 2
