"""Claiming: one scheduler per SQLite file; disjoint claims and lease expiry on PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from scheduler.world import DAY, World


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_second_scheduler_on_sqlite_stands_by_then_takes_over(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    assert world.store.dialect == "sqlite"
    world.add("acme/one")
    first = world.scheduler("r1")
    second = world.scheduler("r2")
    world.advance(41 * DAY)
    assert not first.tick().standby
    with caplog.at_level(logging.WARNING):
        assert second.tick().standby
    assert "another scheduler (r1) already runs this SQLite database" in caplog.text
    first.stop()
    assert not second.tick().standby


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_replicas_claim_disjoint_batches_and_expired_leases_return(world: World) -> None:
    assert world.store.dialect == "postgresql"
    for i in range(30):
        world.add(f"acme/c{i:02d}")
    a = world.scheduler("a", batch=20, lease_ttl=60)
    b = world.scheduler("b", batch=20, lease_ttl=60)
    world.advance(41 * DAY)
    now = world.now()
    claims_a = {c.name for c in a.claim(now)}
    claims_b = {c.name for c in b.claim(now)}
    assert len(claims_a) == 20 and len(claims_b) == 10 and not claims_a & claims_b
    assert b.claim(now) == []
    # "a" dies holding its claims: after the lease expires "b" takes them and works them.
    world.advance(61)
    first, second = b.tick(), b.tick()
    assert first.claimed + second.claimed == 30 and first.renewed + second.renewed == 30
    assert world.exchanges() == 30
