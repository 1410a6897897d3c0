"""``policy``: back-off, retry delays, due times and reminder maths (pure, no database).

These numbers decide how often Meta is called after a failure and whether a human hears about
an expiring token in time; the scheduler tests prove the wiring, these prove the arithmetic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from permatoken.policy import (
    DAY,
    Policy,
    backoff,
    format_duration,
    next_reminder_at,
    reminder_due,
    renewal_due_at,
    retry_delay,
)
from permatoken.timeutil import parse_duration

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
P = Policy(backoff_base=60.0, backoff_cap=3600.0, jitter=0.0)


class Fixed(random.Random):
    """A random source that always draws ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "raw"), [(0, 60), (1, 60), (2, 120), (3, 240), (6, 1920), (7, 3600), (40, 3600)]
)
def test_backoff_doubles_per_attempt_up_to_the_cap(attempt: int, raw: float) -> None:
    """Full jitter on the top half: the wait is between half the raw delay and all of it."""
    assert backoff(P, attempt, Fixed(0.0)) == raw / 2
    assert backoff(P, attempt, Fixed(0.5)) == raw * 3 / 4
    assert backoff(P, attempt, Fixed(1.0)) == raw


def test_backoff_spreads_workers_that_failed_together() -> None:
    rng = random.Random(7)
    waits = {backoff(P, 3, rng) for _ in range(50)}
    assert len(waits) > 40 and all(120 <= w <= 240 for w in waits)


def test_a_retry_hint_only_ever_lengthens_the_wait() -> None:
    assert retry_delay(P, 1, 2.0) >= 30
    assert retry_delay(P, 1, 5000.0) == 5000.0
    assert 30 <= retry_delay(P, 1, None) <= 60


def test_renewal_is_due_at_the_fraction_of_the_lifetime() -> None:
    issued = NOW - 10 * timedelta(days=1)
    due = renewal_due_at(
        Policy(renew_at=0.5, jitter=0.0),
        issued_at=issued,
        expires_at=issued + timedelta(days=60),
        created_at=NOW,
    )
    assert due == issued + timedelta(days=30)


def test_renew_before_wins_when_it_comes_first() -> None:
    issued = NOW
    due = renewal_due_at(
        Policy(renew_at=0.9, renew_before=20 * DAY, jitter=0.0),
        issued_at=issued,
        expires_at=issued + timedelta(days=60),
        created_at=NOW,
    )
    assert due == issued + timedelta(days=40)


def test_jitter_only_moves_the_due_point_earlier_and_is_stable_per_seed() -> None:
    base = dict(issued_at=NOW, expires_at=NOW + timedelta(days=60), created_at=NOW)
    plain = renewal_due_at(Policy(jitter=0.0), **base)
    a1 = renewal_due_at(Policy(jitter=0.2), **base, jitter_seed="acme/a")
    a2 = renewal_due_at(Policy(jitter=0.2), **base, jitter_seed="acme/a")
    b = renewal_due_at(Policy(jitter=0.2), **base, jitter_seed="acme/b")
    assert plain is not None and a1 is not None and b is not None
    assert a1 == a2 and a1 != b
    for due in (a1, b):
        assert plain - timedelta(days=40 * 0.2) <= due <= plain


def test_a_never_expiring_token_is_due_only_with_max_age() -> None:
    assert renewal_due_at(P, issued_at=None, expires_at=None, created_at=NOW) is None
    due = renewal_due_at(Policy(max_age=30 * DAY), issued_at=None, expires_at=None, created_at=NOW)
    assert due == NOW + timedelta(days=30)


REMIND = Policy(remind_before=(14 * DAY, 7 * DAY, 3 * DAY, 1 * DAY))


@pytest.mark.parametrize(
    ("days_left", "threshold_days"),
    [(20, None), (14, 14), (10, 14), (7, 7), (2, 3), (0.5, 1)],
)
def test_the_reminder_due_is_the_most_urgent_threshold_crossed(
    days_left: float, threshold_days: float | None
) -> None:
    """A scheduler that was down across several thresholds sends one reminder, not a burst."""
    due = reminder_due(REMIND, NOW + timedelta(days=days_left), NOW)
    assert due == (None if threshold_days is None else threshold_days * DAY)


def test_no_reminder_once_expired_or_for_a_token_that_never_expires() -> None:
    assert reminder_due(REMIND, NOW, NOW) is None
    assert reminder_due(REMIND, NOW - timedelta(days=1), NOW) is None
    assert reminder_due(REMIND, None, NOW) is None


def test_the_next_reminder_is_the_next_threshold_not_yet_crossed() -> None:
    expires = NOW + timedelta(days=10)
    assert next_reminder_at(REMIND, expires, NOW) == expires - timedelta(days=7)
    assert next_reminder_at(REMIND, NOW + timedelta(hours=12), NOW) is None
    assert next_reminder_at(REMIND, None, NOW) is None
    assert next_reminder_at(Policy(remind_before=()), expires, NOW) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (45, "45s"),
        (60, "1m"),
        (90, "1.5m"),
        (3600, "1h"),
        (5400, "1.5h"),
        (86400, "1d"),
        (14 * 86400, "14d"),
        (36 * 3600, "1.5d"),
    ],
)
def test_a_duration_is_written_in_its_largest_unit(seconds: float | None, text: str) -> None:
    """Whole units without decimals, one decimal otherwise; no duration is a dash."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [45, 60, 3600, 7 * 86400, 30 * 86400])
def test_a_whole_duration_reads_back_as_itself(seconds: float) -> None:
    """What `policy show` prints for whole units reads back through parse_duration unchanged."""
    assert parse_duration(format_duration(seconds)) == timedelta(seconds=seconds)
