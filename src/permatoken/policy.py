"""Renewal policy: when to renew, how long to keep the previous version, when to remind.

Pure decisions over plain data. Global defaults are overridden per tenant and per credential
by dictionaries of the same keys (stored as JSON on the credential); :func:`resolve` merges them.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from ._exceptions import InputError
from .timeutil import DURATION_FORMS, parse_duration

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Policy:
    #: Renew when this fraction of the lifetime (issued → expiry) has passed.
    renew_at: float = 2 / 3
    #: …or this many seconds before expiry, whichever comes first (None = fraction only).
    renew_before: float | None = None
    #: Spread renewals by up to this fraction of the remaining time before the due point.
    jitter: float = 0.05
    #: Rotate never-expiring tokens after this many seconds (None = never; needs the mint issuer).
    max_age: float | None = None
    #: How often to inspect tokens that never expire (they die silently when access is removed).
    inspect_every: float = DAY
    #: How long a previous version stays usable after a rotation before it is retired.
    grace: float = 3600.0
    #: Revoke the previous version upstream once its grace period is over.
    revoke_previous: bool = False
    #: Remind humans this many seconds before expiry.
    remind_before: tuple[float, ...] = (14 * DAY, 7 * DAY, 3 * DAY, 1 * DAY)
    #: Capped exponential backoff after a failed attempt.
    backoff_base: float = 60.0
    backoff_cap: float = 6 * 3600.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["remind_before"] = list(self.remind_before)
        return data


DEFAULT_POLICY = Policy()
POLICY_KEYS = tuple(f.name for f in fields(Policy))


def parse_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a dict of overrides (from CLI, API or config); durations may be '10d' strings."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in POLICY_KEYS:
            raise InputError(f"unknown policy setting {key!r}; known: {', '.join(POLICY_KEYS)}")
        if value is None:
            out[key] = None
            continue
        if key == "renew_at":
            out[key] = _fraction(value)
        elif key == "jitter":
            f = _number(value, key)
            if not 0 <= f < 0.5:
                raise InputError(
                    "jitter must be between 0 and 0.5 (a fraction of the remaining time)"
                )
            out[key] = f
        elif key == "revoke_previous":
            if not isinstance(value, bool):
                raise InputError("revoke_previous must be true or false")
            out[key] = value
        elif key == "remind_before":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not items:
                raise InputError(f"remind_before must be a list of durations ({DURATION_FORMS})")
            out[key] = tuple(sorted((_seconds(v, key) for v in items), reverse=True))
        else:
            out[key] = _seconds(value, key)
    if (
        out.get("backoff_base")
        and out.get("backoff_cap")
        and out["backoff_cap"] < out["backoff_base"]
    ):
        raise InputError("backoff_cap must be at least backoff_base")
    return out


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{key} must be a number")
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{key} must be a number, got {str(value)[:20]!r}") from None


def _fraction(value: Any) -> float:
    f = _number(value, "renew_at")
    if not 0 < f < 1:
        raise InputError("renew_at must be a fraction of the lifetime between 0 and 1 (e.g. 0.66)")
    return f


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise InputError(f"{key} must be greater than zero: expected {DURATION_FORMS}")
        return float(value)
    if isinstance(value, str):
        return parse_duration(value, what=key).total_seconds()
    raise InputError(f"{key} must be a duration: expected {DURATION_FORMS}")


def resolve(*layers: dict[str, Any] | None) -> Policy:
    """Defaults, then each layer of overrides in order (global config, tenant, credential)."""
    policy = DEFAULT_POLICY
    for layer in layers:
        if layer:
            policy = replace(policy, **parse_overrides(layer))
    return policy


def check_against_lifetime(policy: Policy, lifetime: float | None) -> None:
    """Refuse a policy that could never renew in time for a token of this lifetime."""
    if lifetime is None:
        return
    if policy.renew_before is not None and policy.renew_before >= lifetime:
        raise InputError(
            f"renew_before ({policy.renew_before / DAY:.1f} d) is past the token's lifetime "
            f"({lifetime / DAY:.1f} d): it would renew immediately forever"
        )


# --- due times -------------------------------------------------------------------------


def _stable_unit(seed: str) -> float:
    """A deterministic number in [0, 1) per seed, so jitter is stable across restarts."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64


def renewal_due_at(
    policy: Policy,
    *,
    issued_at: datetime | None,
    expires_at: datetime | None,
    created_at: datetime,
    jitter_seed: str = "",
) -> datetime | None:
    """When a renewal should start, or None if the token never needs one."""
    if expires_at is None:
        if policy.max_age is None:
            return None
        return (issued_at or created_at) + timedelta(seconds=policy.max_age)
    start = issued_at or created_at
    lifetime = max((expires_at - start).total_seconds(), 0.0)
    due = start + timedelta(seconds=lifetime * policy.renew_at)
    if policy.renew_before is not None:
        due = min(due, expires_at - timedelta(seconds=policy.renew_before))
    # Jitter only ever moves the due point earlier, never closer to the edge.
    spread = max((due - start).total_seconds(), 0.0) * policy.jitter
    return due - timedelta(seconds=spread * _stable_unit(jitter_seed))


def backoff(policy: Policy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): capped exponential, full jitter on top half."""
    raw = float(min(policy.backoff_cap, policy.backoff_base * (2 ** max(attempt - 1, 0))))
    r = (rng or random).random()
    return raw / 2 + raw / 2 * r


def retry_delay(policy: Policy, attempt: int, hint: float | None = None) -> float:
    """Seconds before retry ``attempt`` after a failure: the policy's back-off, or longer when
    upstream asked for longer (``Retry-After``, a throttle estimate). A hint never shortens the
    wait: Meta's "retry in 2 s" for codes 1/2 would otherwise mean a call every 2 s for hours."""
    return max(backoff(policy, attempt), hint or 0.0)


# --- presentation and reminders (used by the scheduler, the notifier and the CLI) ----------

#: CLI option name → policy key, for `permatoken policy set` and `permatoken add`.
CLI_OPTIONS = {
    "renew_at": "--renew-at",
    "renew_before": "--renew-before",
    "jitter": "--jitter",
    "max_age": "--max-age",
    "inspect_every": "--inspect-every",
    "grace": "--grace",
    "revoke_previous": "--revoke-previous",
    "remind_before": "--remind-before",
    "backoff_base": "--backoff-base",
    "backoff_cap": "--backoff-cap",
}


def format_duration(seconds: float | None) -> str:
    """``864000`` → ``10d``: accepted back by :func:`~permatoken.timeutil.parse_duration` for
    whole units, one decimal otherwise (``1.5h``)."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            value = seconds / size
            if abs(value - round(value)) < 1e-9:
                return f"{round(value)}{unit}"
            return f"{value:.1f}{unit}"
    return f"{seconds:g}s"


def describe(policy: Policy) -> dict[str, Any]:
    """The policy with durations as readable strings (``status --json`` / ``policy show``)."""
    return {
        "renew_at": round(policy.renew_at, 4),
        "renew_before": format_duration(policy.renew_before) if policy.renew_before else None,
        "jitter": policy.jitter,
        "max_age": format_duration(policy.max_age) if policy.max_age else None,
        "inspect_every": format_duration(policy.inspect_every),
        "grace": format_duration(policy.grace),
        "revoke_previous": policy.revoke_previous,
        "remind_before": [format_duration(s) for s in policy.remind_before],
        "backoff_base": format_duration(policy.backoff_base),
        "backoff_cap": format_duration(policy.backoff_cap),
    }


def summary(policy: Policy) -> str:
    """One line: ``renew at 67% (or 10d before), remind 14d,7d,3d,1d, grace 1h``."""
    renew = f"renew at {policy.renew_at:.0%}"
    if policy.renew_before:
        renew += f" (or {format_duration(policy.renew_before)} before)"
    parts = [renew]
    if policy.max_age:
        parts.append(f"max age {format_duration(policy.max_age)}")
    reminds = ",".join(format_duration(s) for s in policy.remind_before) or "none"
    parts += [f"remind {reminds}", f"grace {format_duration(policy.grace)}"]
    return ", ".join(parts)


def to_layer(overrides: dict[str, Any]) -> dict[str, Any]:
    """Parsed overrides as JSON-storable values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}


def check_layer_against_lifetime(policy: Policy, lifetime: float | None) -> None:
    """:func:`check_against_lifetime` plus the limits a CLI user can trip over."""
    check_against_lifetime(policy, lifetime)
    if lifetime is not None and policy.max_age is not None and policy.max_age >= lifetime:
        raise InputError(
            f"max_age ({format_duration(policy.max_age)}) is past the token's lifetime "
            f"({format_duration(lifetime)}); max_age is for never-expiring tokens"
        )


def reminder_due(policy: Policy, expires_at: datetime | None, now: datetime) -> float | None:
    """The reminder threshold (seconds before expiry) to announce now, or None.

    Of the thresholds already crossed, the most urgent one: a scheduler that was down across
    several thresholds sends one reminder, not a burst. Nothing once the token has expired.
    """
    if expires_at is None or expires_at <= now:
        return None
    left = (expires_at - now).total_seconds()
    crossed = [t for t in policy.remind_before if t >= left]
    return min(crossed) if crossed else None


def next_reminder_at(policy: Policy, expires_at: datetime | None, now: datetime) -> datetime | None:
    """When the next not-yet-crossed threshold will be crossed."""
    if expires_at is None:
        return None
    future = [expires_at - timedelta(seconds=t) for t in policy.remind_before]
    future = [at for at in future if at > now]
    return min(future) if future else None
