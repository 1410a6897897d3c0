"""Budgets: a per-WABA limit in the sandbox is never hit; renewals still finish in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from permatoken.meta.usage import parse_usage
from permatoken.models import Credential, Health
from permatoken.sandbox import SandboxConfig
from permatoken.scheduler.budgets import costs, usage_delays
from scheduler.world import DAY, World

THROTTLE_CODES = {4, 17, 32, 613, 80007, 80008}


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(waba_calls_per_hour=20, active_waba_calls_per_hour=20)


def test_many_credentials_of_one_waba_renew_without_a_single_throttle(world: World) -> None:
    """60 credentials share one WABA limited to 20 calls/h: 0 throttling errors, all renewed."""
    names = [f"acme/n{i:02d}" for i in range(60)]
    for name in names:
        world.add(name, options={"canary": True})
    expiry = {n: world.store.version(n).meta.expires_at for n in names}
    sched = world.scheduler(settings={"budget_waba_per_hour": 20})
    world.advance(41 * DAY)
    deferred = 0
    steps = 0
    while not all(world.store.get(n).current_version == 2 for n in names):
        report = sched.tick()
        deferred += report.deferred
        assert report.failed == 0, report
        world.advance(300)
        steps += 1
        assert steps < 12 * 24 * 10, "renewals did not finish within 10 simulated days"
    errors = [c for c in world.state.calls() if c["error_code"] in THROTTLE_CODES]
    assert errors == []
    waba_calls = world.state.calls("GET /{waba-id}/phone_numbers")
    assert len(waba_calls) == 60  # one canary per renewal verification
    assert deferred > 0  # the budget, not luck, kept it under the limit
    for name in names:
        new = world.store.versions(name)[-1]
        assert new.created_at < expiry[name]  # renewed before the old token expired
    hours = steps * 300 / 3600
    print(
        f"\n60 renewals against a 20/h WABA budget: {hours:.1f} simulated hours, "
        f"{deferred} deferrals"
    )
    assert hours >= 2.5  # 60 calls at <= 18/h cannot take less


def test_a_throttled_renewal_is_postponed_not_failed(world: World) -> None:
    """Meta says 80008 on the exchange: the credential waits, is renewed later, never 'failing'."""
    world.add("acme/busy")
    world.state.inject_fault("GET /oauth/access_token", "error", code=80008, count=1)
    sched = world.scheduler()
    world.advance(41 * DAY)
    report = sched.tick()
    assert report.deferred == 1 and report.failed == 0 and report.renewed == 0
    cred = world.store.get("acme/busy")
    assert cred.health is not Health.FAILING and cred.next_action == "renew"
    assert cred.next_due_at is not None and cred.next_due_at > world.now()
    assert world.store.get("acme/busy").current_version == 1
    world.advance(6 * 3600)
    assert sched.tick().renewed == 1


def _cred(**kw: object) -> Credential:
    base: dict[str, object] = dict(
        id=1,
        name="a/b",
        tenant="a",
        issuer="meta-system-refresh",
        purpose=None,
        business_id=None,
        waba_ids=("111",),
        phone_number_id=None,
        app_id="999",
        health=Health.OK,
        health_reason=None,
    )
    base.update(kw)
    return Credential(**base)  # type: ignore[arg-type]


def test_costs_and_usage_delays_are_pure_decisions() -> None:
    assert costs("renew", _cred()) == {"app:999": 2}
    assert costs("renew", _cred(options={"canary": True})) == {"app:999": 2, "waba:999:111": 1}
    assert costs("inspect", _cred(options={"canary": True})) == {"app:999": 1, "waba:999:111": 1}
    assert costs("inspect", _cred(app_id=None)) == {}
    assert costs("remind", _cred()) == {}
    usage = parse_usage(
        {
            "x-app-usage": '{"call_count": 50}',
            "x-business-use-case-usage": '{"111": [{"type": "whatsapp", "call_count": 100, '
            '"estimated_time_to_regain_access": 7}]}',
        }
    )
    assert usage_delays(usage, "999") == {"waba:999:111": 420.0}
    assert usage_delays(parse_usage({"x-app-usage": '{"call_count": 95}'}), "999")["app:999"] > 1
    assert usage_delays(parse_usage({"x-app-usage": '{"call_count": 10}'}), "999") == {}


def test_reservations_are_shared_through_the_database(world: World) -> None:
    """Two schedulers (replicas) draw on one budget; a full budget says when it frees."""
    a = world.scheduler("a", settings={"budget_waba_per_hour": 10, "budget_share": 1.0})
    b = world.scheduler("b", settings={"budget_waba_per_hour": 10, "budget_share": 1.0})
    now = world.now()
    for i in range(10):
        assert (a if i % 2 else b).budgets.reserve({"waba:1:2": 1}, now) is None
    later = a.budgets.reserve({"waba:1:2": 1}, now)
    assert later is not None and now < later <= now + timedelta(minutes=70)
    assert b.budgets.reserve({"waba:1:2": 1}, later) is None
    assert datetime.now(UTC)  # keep the import honest
