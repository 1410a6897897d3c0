"""Batched renewals (scheduler/batch.py): statements counted, not timed; failures stay local.

The counts come from a SQLAlchemy ``before_cursor_execute`` listener on the store's engine, so
every statement a tick sends is seen: claiming, budgets, every rotation step, notices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from permatoken.models import Health
from permatoken.store.schema import credentials
from scheduler.world import DAY, World

MAX_PER_RENEWAL = 6


class Statements:
    def __init__(self) -> None:
        self.count = 0
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        self.seen.append(statement.split("\n", 1)[0][:100])


@contextmanager
def counted(world: World) -> Iterator[Statements]:
    counter = Statements()
    sa.event.listen(world.store.engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        sa.event.remove(world.store.engine, "before_cursor_execute", counter)


def _due_again(world: World, names: list[str]) -> None:
    with world.store.write() as conn:
        conn.execute(
            credentials.update()
            .where(credentials.c.name.in_(names))
            .values(next_due_at=world.now() - timedelta(seconds=1), next_action="renew")
        )


def _fill(world: World, count: int) -> None:
    """Stored but not due (no versions needed: they only have to be there)."""
    now = world.now()
    rows = [
        {
            "name": f"idle{i % 40}/c{i:05d}",
            "tenant": f"idle{i % 40}",
            "issuer": "manual",
            "waba_ids": [],
            "options": {},
            "policy": {},
            "health": "ok",
            "next_due_at": now + timedelta(days=1 + i % 30),
            "next_action": "inspect",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    with world.store.write() as conn:
        conn.execute(credentials.insert(), rows)


def test_a_batched_renewal_costs_at_most_six_statements(world: World) -> None:
    """20 due renewals in one tick: each renewed once, ≤ 6 statements per renewal in all."""
    names = [f"acme/c{i:02d}" for i in range(20)]
    for name in names:
        world.add(name)
    sched = world.scheduler(batch=20)
    world.advance(41 * DAY)
    with counted(world) as stmts:
        report = sched.tick()
    assert report.claimed == 20 and report.renewed == 20, report
    assert {world.store.version(n).version for n in names} == {2}
    assert world.exchanges() == 20
    per_renewal = stmts.count / 20
    assert per_renewal <= MAX_PER_RENEWAL, (per_renewal, stmts.seen)


def test_a_ticks_statements_do_not_grow_with_the_credentials_stored(world: World) -> None:
    """The same 10 due renewals cost the same statements with 10 and with 2,000 stored."""
    names = [f"acme/c{i:02d}" for i in range(10)]
    for name in names:
        world.add(name)
    sched = world.scheduler(batch=50)
    sched.layers.ttl = 3600  # tenant policies read once: the ticks compared both use the cache
    world.advance(41 * DAY)
    assert sched.tick().renewed == 10  # first tick: leader row and caches filled
    _due_again(world, names)
    with counted(world) as small:
        assert sched.tick().renewed == 10
    _fill(world, 1_990)
    _due_again(world, names)
    with counted(world) as large:
        report = sched.tick()
    assert report.claimed == 10 and report.renewed == 10, report
    assert {world.store.version(n).version for n in names} == {4}
    assert large.count == small.count, (small.seen, large.seen)


def test_the_old_one_by_one_path_costs_many_more_statements(world: World) -> None:
    """The comparison the bench prints, as a count: the batch is what brings it down."""
    names = [f"acme/c{i:02d}" for i in range(10)]
    for name in names:
        world.add(name)
    old = world.scheduler("old", batch=10, _batched=False)
    world.advance(41 * DAY)
    with counted(world) as stmts:
        assert old.tick().renewed == 10
    assert stmts.count / 10 > 3 * MAX_PER_RENEWAL


def test_a_failing_credential_does_not_hold_back_its_batch(world: World) -> None:
    """One revoked token among five: four renewed in the batch, the fifth recorded as a
    failure needing a human by the engine's own code, no step left behind, no lease kept."""
    names = [f"acme/c{i}" for i in range(5)]
    values = {name: world.add(name) for name in names}
    world.state.revoke_token(values["acme/c2"])
    sched = world.scheduler(batch=10)
    world.advance(41 * DAY)
    report = sched.tick()
    assert report.renewed == 4 and report.failed == 1, report
    for name in names:
        cred = world.store.get(name)
        assert cred.rotation_step is None
        assert world.store.lease_holder(name) == (None, None)
        if name == "acme/c2":
            assert world.store.version(name).version == 1
            assert cred.health in (Health.NEEDS_HUMAN, Health.INVALID), cred.health
            assert cred.next_due_at is not None and cred.next_due_at > world.now()
        else:
            assert world.store.version(name).version == 2
            assert cred.health is Health.OK
            assert cred.next_action == "retire"


def test_a_credential_busy_in_this_process_is_left_to_the_one_by_one_path(world: World) -> None:
    """The engine's in-process lock is respected: a credential an API rotation holds is not
    renewed by the batch (it is reported busy and postponed), the others are."""
    names = [f"acme/c{i}" for i in range(4)]
    for name in names:
        world.add(name)
    sched = world.scheduler(batch=10)
    world.advance(41 * DAY)
    lock = sched.engine.locks.lock_for("acme/c1")
    lock.acquire()
    try:
        report = sched.tick()
    finally:
        lock.release()
    assert report.renewed == 3 and report.skipped == 1, report
    assert world.store.version("acme/c1").version == 1
    assert world.exchanges() == 3


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_every_batched_promotion_is_notified_to_other_replicas(
    world: World, store_url: str
) -> None:
    """One pg_notify per promoted credential (what brokers on other replicas wait for)."""
    import psycopg

    from permatoken.store.repository import NOTIFY_CHANNEL

    names = [f"acme/c{i}" for i in range(3)]
    for name in names:
        world.add(name)
    sched = world.scheduler(batch=10)
    world.advance(41 * DAY)
    with psycopg.connect(
        store_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        assert sched.tick().renewed == 3
        got = [json.loads(n.payload) for n in conn.notifies(timeout=10, stop_after=3)]
    assert sorted(got, key=lambda d: d["name"]) == [{"name": n, "version": 2} for n in names]
