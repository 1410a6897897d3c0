"""Time in one place: aware UTC datetimes, an injectable clock, duration parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ._exceptions import InputError


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_unix(ts: float | int | None) -> datetime | None:
    """Unix seconds to an aware datetime; 0 and None mean 'never' and give None."""
    if not ts:
        return None
    return datetime.fromtimestamp(float(ts), UTC)


def ensure_utc(dt: datetime | None) -> datetime | None:
    """Databases may hand back naive datetimes; ours are always UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def isoformat(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return ensure_utc(dt).isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date or datetime; naive values are taken as UTC."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"cannot parse {text[:40]!r} as a date/time",
            hint="use ISO 8601, e.g. 2027-01-31 or 2027-01-31T12:00:00Z",
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


DURATION_FORMS = "a number followed by s, m, h, d or w (e.g. 90s, 15m, 12h, 10d, 2w)"
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """``10d`` → 10 days. Zero and negative durations are refused."""
    m = _DURATION_RE.fullmatch(text.strip().lower())
    if not m:
        raise InputError(f"cannot parse {what} {text[:40]!r}: expected {DURATION_FORMS}")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds <= 0:
        raise InputError(f"{what} must be greater than zero: expected {DURATION_FORMS}")
    if seconds > 100 * 365 * 86400:
        raise InputError(f"{what} {text!r} is longer than 100 years")
    return timedelta(seconds=seconds)
