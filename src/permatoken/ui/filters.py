"""Jinja filters: times as people read them (``in 3 d``, ``2 h ago``) and as machines do;
``masked`` for stored free text (errors, event details) that should never hold a value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._secret import redact
from ..timeutil import ensure_utc, isoformat


def when(at: datetime | None, now: datetime) -> str:
    """``in 3 d 4 h`` / ``5 min ago`` / ``never``."""
    if at is None:
        return "never"
    seconds = (ensure_utc(at) - now).total_seconds()  # type: ignore[operator]
    text = span(abs(seconds))
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        h, m = divmod(int(seconds // 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(int(seconds // 3600), 24)
    return f"{d} d {h} h" if h and d < 10 else f"{d} d"


def iso(at: datetime | None) -> str:
    return isoformat(at) or ""


def short(at: datetime | None) -> str:
    """``2026-12-01 14:05 UTC``."""
    if at is None:
        return "—"
    return ensure_utc(at).strftime("%Y-%m-%d %H:%M UTC")  # type: ignore[union-attr]


def masked(value: Any) -> str:
    """``value`` as text with every known and every token-shaped secret masked."""
    return redact(str(value))


FILTERS: dict[str, Any] = {"iso": iso, "masked": masked, "short": short, "when": when}

__all__ = ["FILTERS", "iso", "masked", "short", "span", "when"]
