"""Call budgets per app and per app+WABA: rate limits are a budget, not an error.

Two sources, both consulted before a due credential is worked on:

- **Spend counted in the database** (``budget_spend``), in 10-minute buckets, so every replica
  sees the calls of the others. A reservation adds the calls of one action (a renewal is the
  exchange and the ``debug_token`` verification, plus a canary call against the WABA when the
  credential asks for one) only if the last hour, counted conservatively as the last seven
  buckets, stays under the limit; the reservation is serialised per key with a row lock.
- **What Meta said**: the usage headers of the latest response (``X-App-Usage``,
  ``X-Business-Use-Case-Usage``) and throttling errors block a key until Meta's estimate (or a
  back-off) has passed. These blocks live in the process: each replica learns them from its own
  responses, and Meta's counters are global.

A blocked or exhausted key postpones the credential (``next_due_at`` moves later); it is never
a failure.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..meta.usage import MAX_SLOWDOWN_DELAY, SLOW_DOWN_AT, THROTTLED_DELAY, Usage
from ..models import Credential
from ..store import Store
from ..store import budgets as ledger

BUCKET = 600  # seconds
WINDOW_BUCKETS = 7  # a bucket partly in the window counts whole: never under-counts an hour
CANARY_OPTION = "canary"


@dataclass(frozen=True)
class Limits:
    app_per_hour: int = 5000
    waba_per_hour: int = 200
    waba_overrides: dict[str, int] = field(default_factory=dict)
    share: float = 0.9

    def limit(self, key: str) -> int:
        kind, _, rest = key.partition(":")
        if kind == "app":
            return max(1, math.floor(self.app_per_hour * self.share))
        waba = rest.split(":", 1)[-1]
        return max(1, math.floor(self.waba_overrides.get(waba, self.waba_per_hour) * self.share))


def costs(action: str, cred: Credential) -> dict[str, int]:
    """Graph calls an action will make, per budget key (pure).

    Only Meta-backed credentials with an app spend budget; the WABA budget is spent by the
    canary call (``GET /{waba}/phone_numbers``) when the credential has ``options.canary``.
    """
    from ..issuers import issuer_for

    if not cred.app_id or action not in ("renew", "inspect") or not issuer_for(cred.issuer).meta:
        return {}
    calls = 2 if action == "renew" else 1
    out = {f"app:{cred.app_id}": calls}
    if cred.options.get(CANARY_OPTION) and cred.waba_ids and not cred.phone_number_id:
        out[f"waba:{cred.app_id}:{cred.waba_ids[0]}"] = 1
    return out


def usage_delays(usage: Usage | None, app_id: str) -> dict[str, float]:
    """Seconds to hold each key after a response with these usage headers (pure)."""
    if usage is None:
        return {}
    out: dict[str, float] = {}

    def delay(percent: float, regain: float | None) -> float | None:
        if regain:
            return regain
        if percent >= 100.0:
            return THROTTLED_DELAY
        if percent >= SLOW_DOWN_AT:
            share = (percent - SLOW_DOWN_AT) / (100.0 - SLOW_DOWN_AT)
            return max(1.0, share * MAX_SLOWDOWN_DELAY)
        return None

    if usage.app_percent is not None:
        d = delay(usage.app_percent, None)
        if d:
            out[f"app:{app_id}"] = d
    for case in usage.business:
        d = delay(case.percent, case.regain_access_seconds)
        if d:
            key = f"waba:{app_id}:{case.object_id}"
            out[key] = max(out.get(key, 0.0), d)
    return out


def _bucket(at: datetime) -> int:
    return int(at.timestamp()) // BUCKET


class Budgets:
    """Reserve calls before an action; learn blocks from responses. Thread-safe."""

    def __init__(self, store: Store, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self._blocked: dict[str, datetime] = {}
        self._lock = threading.Lock()

    # --- blocks learned from Meta -------------------------------------------------------
    def block(self, key: str, until: datetime) -> None:
        with self._lock:
            if until > self._blocked.get(key, datetime.min.replace(tzinfo=UTC)):
                self._blocked[key] = until

    def observe(self, usage: Usage | None, app_id: str | None, now: datetime) -> None:
        if not app_id:
            return
        for key, seconds in usage_delays(usage, app_id).items():
            self.block(key, now + timedelta(seconds=seconds))

    def blocked_until(self, keys: Iterable[str], now: datetime) -> datetime | None:
        with self._lock:
            times = [
                self._blocked[k] for k in keys if k in self._blocked and self._blocked[k] > now
            ]
        return max(times) if times else None

    # --- spend shared through the database ---------------------------------------------
    def reserve(self, wanted: dict[str, int], now: datetime) -> datetime | None:
        """Spend ``wanted`` calls now, or spend nothing and say when it may fit."""
        wanted = dict(wanted)
        if not wanted:
            return None
        held = self.blocked_until(wanted, now)
        if held is not None:
            return held
        cur = _bucket(now)
        first = cur - WINDOW_BUCKETS + 1
        with self.store.write() as conn:
            later: datetime | None = None
            for key in sorted(wanted):  # a fixed order: no deadlock between replicas
                rows = ledger.locked_window(conn, self.store.dialect, key, cur, first)
                limit = self.limits.limit(key)
                wanted[key] = min(wanted[key], limit)  # an action bigger than a budget still runs
                used = sum(n for _, n in rows)
                if used + wanted[key] > limit:
                    later = max(later or now, _fits_at(rows, used, wanted[key], limit))
            if later is not None:
                return later  # spends nothing (the empty bucket row it may have added is harmless)
            for key, n in wanted.items():
                ledger.add_spend(conn, key, cur, n)
            if cur % 6 == 0:  # now and then, forget buckets older than the window
                ledger.forget_before(conn, first - 6)
        return None

    def reserve_many(self, wanted: list[dict[str, int]], now: datetime) -> list[datetime | None]:
        """:meth:`reserve` for a batch, in one transaction: items are granted in order while
        every key they need still fits; each answer is None (spent) or when it may fit.

        Costs a fixed number of statements per distinct key, whatever the batch size.
        """
        answers: list[datetime | None] = [None] * len(wanted)
        keys = sorted({k for w in wanted for k in w})
        if not keys:
            return answers
        cur = _bucket(now)
        first = cur - WINDOW_BUCKETS + 1
        with self.store.write() as conn:
            history: dict[str, list[tuple[int, int]]] = {}
            used: dict[str, int] = {}
            for key in keys:  # the same fixed order as reserve(): no deadlock between replicas
                history[key] = ledger.locked_window(conn, self.store.dialect, key, cur, first)
                used[key] = sum(n for _, n in history[key])
            spend = dict.fromkeys(keys, 0)
            for i, item in enumerate(wanted):
                if not item:
                    continue
                held = self.blocked_until(item, now)
                if held is not None:
                    answers[i] = held
                    continue
                later: datetime | None = None
                need = {k: min(n, self.limits.limit(k)) for k, n in item.items()}
                for key, n in need.items():
                    limit = self.limits.limit(key)
                    if used[key] + spend[key] + n > limit:
                        at = _fits_at(history[key], used[key] + spend[key], n, limit)
                        later = max(later or now, at)
                if later is not None:
                    answers[i] = later
                    continue
                for key, n in need.items():
                    spend[key] += n
            for key, n in spend.items():
                if n:
                    ledger.add_spend(conn, key, cur, n)
        return answers

    def spent(self, key: str, now: datetime) -> int:
        first = _bucket(now) - WINDOW_BUCKETS + 1
        with self.store.read() as conn:
            return ledger.spent_since(conn, key, first)


def _fits_at(rows: list[tuple[int, int]], used: int, want: int, limit: int) -> datetime:
    """The first bucket boundary at which enough old calls have left the window."""
    remaining = used
    for bucket, calls in rows:
        remaining -= calls
        if remaining + want <= limit:
            return datetime.fromtimestamp((bucket + WINDOW_BUCKETS) * BUCKET, UTC)
    last = rows[-1][0] if rows else 0
    return datetime.fromtimestamp((last + WINDOW_BUCKETS) * BUCKET, UTC)


__all__ = ["Budgets", "Limits", "costs", "usage_delays"]
