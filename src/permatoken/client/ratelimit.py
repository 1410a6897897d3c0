"""Per-phone-number pacing so that bulk sends stay under Meta's throughput limit.

Meta counts sends per business number over one second (80 by default, reference 3.7) and
answers 130429 past it. :class:`RateLimiter` paces sends with the generic cell rate algorithm
(a token bucket written as "theoretical arrival time"): a small burst, then one send every
``1 / (per_second * utilisation)`` seconds (utilisation 0.85 by default). Burst plus paced rate
stay about 10 % under ``per_second`` in any one-second window, which leaves room for network
jitter between this process and Meta. Reservations take a lock for a few microseconds; the
waiting happens outside it (``time.sleep`` or ``anyio.sleep``).
"""

from __future__ import annotations

import math
import threading
import time

import anyio

__all__ = ["DEFAULT_MESSAGES_PER_SECOND", "RateLimiter"]

DEFAULT_MESSAGES_PER_SECOND = 80.0


class RateLimiter:
    """At most about ``per_second`` sends per second for each key (a phone-number id)."""

    def __init__(
        self,
        per_second: float = DEFAULT_MESSAGES_PER_SECOND,
        *,
        utilisation: float = 0.85,
        burst: int | None = None,
    ) -> None:
        if per_second <= 0 or not 0 < utilisation <= 1:
            raise ValueError("per_second must be positive and utilisation in (0, 1]")
        self.per_second = per_second
        self.interval = 1.0 / (per_second * utilisation)
        self.burst = burst if burst is not None else max(1, int(per_second * (1 - utilisation) / 3))
        self._tolerance = (self.burst - 1) * self.interval
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(per_second={self.per_second:g}, burst={self.burst})"

    def reserve(self, key: str, now: float | None = None) -> float:
        """Book the next send for ``key``; return how long to wait before sending."""
        delay = self.try_reserve(key, math.inf, now)
        assert delay is not None  # never over an infinite bound
        return delay

    def try_reserve(self, key: str, max_delay: float, now: float | None = None) -> float | None:
        """Like :meth:`reserve`, but book nothing and return None if the wait would exceed
        ``max_delay`` (a bounded queue: the caller answers "slow down" instead of waiting)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            delay = max(0.0, tat - self._tolerance - now)
            if delay > max_delay:
                return None
            self._tat[key] = tat + self.interval
        return delay

    def pause(self, key: str, seconds: float) -> None:
        """No sends for ``key`` during ``seconds`` (after Meta said 130429 anyway)."""
        now = time.monotonic()
        with self._lock:
            self._tat[key] = max(self._tat.get(key, now), now + seconds + self._tolerance)

    def acquire(self, key: str) -> None:
        delay = self.reserve(key)
        if delay > 0:
            time.sleep(delay)

    async def acquire_async(self, key: str) -> None:
        delay = self.reserve(key)
        if delay > 0:
            await anyio.sleep(delay)
