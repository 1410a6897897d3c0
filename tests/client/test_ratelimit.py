"""``client.ratelimit.RateLimiter``: the reservation arithmetic (pure; no sleeping, no network).

tests/client/test_throttle.py proves the pacing rate and a real burst against the sandbox; these
pin the bounded reservation the proxy relies on, pauses after a 130429, and the argument checks.
"""

from __future__ import annotations

import time

import pytest

from permatoken.client import RateLimiter


def test_a_bounded_reservation_books_nothing_when_the_wait_is_too_long() -> None:
    """try_reserve answers None past max_delay and leaves the schedule as it was."""
    limiter = RateLimiter(10, utilisation=1.0, burst=1)  # one send every 0.1 s
    assert limiter.try_reserve("p", 0.05, now=0.0) == 0.0
    assert limiter.try_reserve("p", 0.05, now=0.0) is None  # would wait 0.1 s
    assert limiter.try_reserve("p", 0.05, now=0.0) is None  # still 0.1 s: nothing was booked
    assert limiter.try_reserve("p", 0.1, now=0.0) == pytest.approx(0.1)


def test_time_passing_frees_the_schedule_without_saving_up_a_burst() -> None:
    """After a quiet minute the next send goes at once, but only ``burst`` of them."""
    limiter = RateLimiter(10, utilisation=1.0, burst=2)
    assert [limiter.reserve("p", now=0.0) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])
    later = [limiter.reserve("p", now=60.0) for _ in range(3)]
    assert later == pytest.approx([0.0, 0.0, 0.1])


def test_a_pause_holds_one_number_back_and_no_other() -> None:
    """After Meta's 130429 the paused number waits about ``seconds``; other numbers do not."""
    limiter = RateLimiter(10, utilisation=1.0, burst=1)
    limiter.pause("p", 5.0)
    now = time.monotonic()
    assert limiter.reserve("p", now=now) == pytest.approx(5.0, abs=0.05)
    assert limiter.reserve("q", now=now) == 0.0


def test_the_default_burst_stays_inside_the_headroom() -> None:
    """80/s at 85 %: a burst of 4, one send every 1/68 s."""
    limiter = RateLimiter()
    assert limiter.burst == 4 and limiter.interval == pytest.approx(1 / 68)
    assert RateLimiter(1).burst == 1  # never zero


@pytest.mark.parametrize("kwargs", [{"per_second": 0}, {"utilisation": 0}, {"utilisation": 1.5}])
def test_a_rate_or_utilisation_out_of_range_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="per_second must be positive"):
        RateLimiter(**kwargs)
