"""Pure decisions about a credential's health as shown to humans."""

from __future__ import annotations

from datetime import datetime, timedelta

from .models import Health, VersionMeta

DEFAULT_EXPIRING_WITHIN = timedelta(days=14)


def assess(
    stored: Health,
    meta: VersionMeta | None,
    now: datetime,
    *,
    expiring_within: timedelta = DEFAULT_EXPIRING_WITHIN,
) -> Health:
    """The health to show: a stored bad verdict wins; otherwise expiry decides.

    A token whose last real call failed stays ``invalid``/``failing``/``needs_human`` until a
    successful inspection clears it: status is never greener than the last evidence.
    """
    if stored in (Health.INVALID, Health.NEEDS_HUMAN, Health.FAILING, Health.RENEWING):
        if meta is not None and meta.expires_at is not None and meta.expires_at <= now:
            return Health.EXPIRED
        return stored
    if meta is None:
        return Health.NEEDS_HUMAN
    if meta.is_valid is False:
        return Health.INVALID
    if meta.expires_at is not None:
        if meta.expires_at <= now:
            return Health.EXPIRED
        if meta.expires_at - now <= expiring_within:
            return Health.EXPIRING
    return Health.OK


def describe_left(expires_at: datetime | None, now: datetime) -> str:
    """'never', '41 d', '21 h', '5 min', 'expired just now', 'expired 3 min ago', 'expired 3 d ago'."""
    if expires_at is None:
        return "never"
    seconds = (expires_at - now).total_seconds()
    if seconds <= 0:
        return "expired just now" if -seconds < 60 else f"expired {_span(-seconds)} ago"
    return _span(seconds)


def _span(seconds: float) -> str:
    """A duration in the largest unit that keeps it above one (minutes at least)."""
    if seconds < 3600:
        return f"{max(seconds / 60, 1):.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"
