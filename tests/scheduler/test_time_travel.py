"""Time travel against the sandbox: both clocks advance together, the scheduler ticks each step."""

from __future__ import annotations

from permatoken.models import VersionState
from scheduler.world import DAY, Sent, World


def _renewal_days(world: World, name: str, start: float) -> list[float]:
    return [
        round((v.created_at.timestamp() - start) / DAY, 1)
        for v in world.store.versions(name)
        if v.version > 1
    ]


def test_60_day_token_renewed_near_day_40_and_80_never_expires_in_a_year(world: World) -> None:
    """A 60-day token is renewed once near day 40, again near day 80, and never expires."""
    world.add("acme/messaging")
    sched = world.scheduler()
    start = world.now().timestamp()
    calls_before = world.exchanges()
    for _ in range(365):
        world.advance(DAY)
        report = sched.tick()
        assert report.failed == 0, report
        cur = world.store.version("acme/messaging")
        assert cur.meta.expires_at is not None and cur.meta.expires_at > world.now()
    days = _renewal_days(world, "acme/messaging", start)
    assert 37 <= days[0] <= 41 and 76 <= days[1] <= 81, days
    # One exchange per renewal: every version renewed exactly once.
    assert world.exchanges() - calls_before == len(days)
    assert len(days) in (9, 10)
    states = [v.state for v in world.store.versions("acme/messaging")]
    assert states.count(VersionState.CURRENT) == 1
    assert VersionState.PREVIOUS not in states[:-2]  # older ones retired after the grace period


def test_revoked_never_expiring_token_found_by_next_daily_inspection(world: World) -> None:
    """A revoked never-expiring token is found invalid within a day; a notice goes out."""
    value = world.add(
        "acme/forever",
        kind="system_user",
        issuer="manual",
        options={"notify": "json://ops.example/hook"},
    )
    sent = Sent()
    sched = world.scheduler(sender=sent)
    for _ in range(3):
        world.advance(DAY)
        assert sched.tick().inspected == 1
    assert world.store.get("acme/forever").health.value == "ok"
    world.state.revoke_token(value)
    world.advance(DAY)
    report = sched.tick()
    assert report.inspected == 1
    cred = world.store.get("acme/forever")
    assert cred.health.value == "invalid"
    assert sched.deliverer.run_once() == 1
    [(url, title, body)] = sent.messages
    assert url == "json://ops.example/hook"
    assert "no longer valid" in title and "acme/forever" in body
    assert value not in title + body
    notices = sched.outbox.all_notices("acme/forever")
    assert [(n["event"], n["state"]) for n in notices] == [("token_invalid", "sent")]
    # The next days' inspections find it still invalid: nothing is sent twice.
    for _ in range(3):
        world.advance(DAY)
        sched.tick()
    sched.deliverer.run_once()
    assert len(sent.messages) == 1


def test_manual_token_gets_exactly_the_14_7_3_1_day_reminders_even_across_a_restart(
    world: World,
) -> None:
    """A manual 60-day token: reminders at 14, 7, 3 and 1 days, each once, restart included."""
    value = world.add("acme/manual", issuer="manual", options={"notify": ["json://ops.example/a"]})
    sent = Sent()
    sched = world.scheduler(sender=sent)
    for _ in range(50):
        world.advance(DAY)
        sched.tick()
        sched.deliverer.run_once()
    assert [t for _, t, _ in sent.messages] == ["[permatoken] acme/manual expires in 14d or less"]
    # A restart: a new scheduler (new process, same database) repeats nothing.
    sched.stop()
    sched = world.scheduler("test-2", sender=sent)
    sched.tick()
    sched.deliverer.run_once()
    assert len(sent.messages) == 1
    for _ in range(9):
        world.advance(DAY)
        sched.tick()
        sched.deliverer.run_once()
    titles = [t for _, t, _ in sent.messages]
    assert titles == [
        f"[permatoken] acme/manual expires in {d} or less" for d in ("14d", "7d", "3d", "1d")
    ]
    assert all(value not in body for _, _, body in sent.messages)
    thresholds = [n["threshold"] for n in sched.outbox.all_notices("acme/manual")]
    assert thresholds == ["14d", "7d", "3d", "1d"]
    # Yet another restart at the same instant: still nothing new.
    sched.stop()
    sched = world.scheduler("test-3", sender=sent)
    sched.tick()
    sched.deliverer.run_once()
    assert len(sent.messages) == 4


def test_a_manual_token_that_expires_gets_one_expired_notice(world: World) -> None:
    """After the reminders, the expiry itself is announced once, with what to do."""
    value = world.add(
        "acme/short", issuer="manual", expires_in=3 * DAY, options={"notify": ["json://ops/a"]}
    )
    sent = Sent()
    sched = world.scheduler(sender=sent)
    for _ in range(6):
        world.advance(DAY)
        sched.tick()
        sched.deliverer.run_once()
    titles = [t for _, t, _ in sent.messages]
    # One notice for the expiry (not a second "no longer valid" from the daily inspection).
    assert titles == [
        "[permatoken] acme/short expires in 3d or less",
        "[permatoken] acme/short expires in 1d or less",
        "[permatoken] acme/short has expired",
    ]
    body = sent.messages[-1][2]
    assert "permatoken rotate acme/short --token-file FILE" in body
    assert value not in "".join(t + b for _, t, b in sent.messages)
