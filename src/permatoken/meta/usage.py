"""Meta's rate-limit headers, parsed into plain numbers a scheduler can budget with.

``X-App-Usage`` is a JSON object of percentages (``call_count``, ``total_cputime``,
``total_time``); throttling starts at 100 on any of them. ``X-Business-Use-Case-Usage`` maps a
business object id (on WhatsApp: the WABA id) to a list of use cases, each with the same
percentages and ``estimated_time_to_regain_access`` in **minutes**. Both headers are absent at
low usage, can exceed 100 %, and are sometimes malformed; parsing never raises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "BusinessUseCase",
    "Usage",
    "parse_app_usage",
    "parse_business_usage",
    "parse_usage",
    "suggested_delay",
]

APP_USAGE_HEADER: Final = "x-app-usage"
BUSINESS_USAGE_HEADER: Final = "x-business-use-case-usage"
_PERCENT_FIELDS: Final = ("call_count", "total_cputime", "total_time")

#: Above this percentage a caller should slow down (Meta throttles at 100).
SLOW_DOWN_AT: Final = 80.0
#: Delay suggested when usage is at or over 100 % and Meta gave no estimate.
THROTTLED_DELAY: Final = 300.0
#: Longest delay suggested while still under 100 %.
MAX_SLOWDOWN_DELAY: Final = 60.0


@dataclass(frozen=True)
class BusinessUseCase:
    """One entry of ``X-Business-Use-Case-Usage``."""

    object_id: str
    type: str | None
    percent: float
    regain_access_seconds: float | None


@dataclass(frozen=True)
class Usage:
    """What the usage headers of one response said.

    ``app_percent`` is the highest ``X-App-Usage`` percentage (``None`` when the header is
    absent); ``business_percent`` maps each business object id to its highest percentage;
    ``regain_access_seconds`` is the longest ``estimated_time_to_regain_access``, in seconds.
    """

    app_percent: float | None = None
    app_fields: Mapping[str, float] = field(default_factory=dict)
    business_percent: Mapping[str, float] = field(default_factory=dict)
    business: tuple[BusinessUseCase, ...] = ()
    regain_access_seconds: float | None = None

    @property
    def max_percent(self) -> float | None:
        values = list(self.business_percent.values())
        if self.app_percent is not None:
            values.append(self.app_percent)
        return max(values) if values else None

    @property
    def is_empty(self) -> bool:
        return self.app_percent is None and not self.business


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number) or math.isinf(number) or number < 0:
        return None
    return number


def _load_object(raw: str | None) -> dict[str, Any] | None:
    if not raw or not isinstance(raw, str):
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def parse_app_usage(raw: str | None) -> dict[str, float]:
    """``X-App-Usage`` as ``{field: percent}``; unknown numeric fields are kept, garbage dropped."""
    data = _load_object(raw)
    if data is None:
        return {}
    result: dict[str, float] = {}
    for key, value in data.items():
        number = _number(value)
        if number is not None:
            result[str(key)] = number
    return result


def parse_business_usage(raw: str | None) -> tuple[BusinessUseCase, ...]:
    """``X-Business-Use-Case-Usage`` as a flat tuple of use cases."""
    data = _load_object(raw)
    if data is None:
        return ()
    result: list[BusinessUseCase] = []
    for object_id, entries in data.items():
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            percents = [_number(entry.get(name)) for name in _PERCENT_FIELDS]
            known = [p for p in percents if p is not None]
            minutes = _number(entry.get("estimated_time_to_regain_access"))
            kind = entry.get("type")
            result.append(
                BusinessUseCase(
                    object_id=str(object_id),
                    type=kind if isinstance(kind, str) else None,
                    percent=max(known) if known else 0.0,
                    regain_access_seconds=minutes * 60.0 if minutes is not None else None,
                )
            )
    return tuple(result)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None


def parse_usage(headers: Mapping[str, str] | None) -> Usage:
    """Read both usage headers from a response's headers (any letter case)."""
    app_fields = parse_app_usage(_header(headers, APP_USAGE_HEADER))
    business = parse_business_usage(_header(headers, BUSINESS_USAGE_HEADER))
    per_object: dict[str, float] = {}
    for case in business:
        per_object[case.object_id] = max(per_object.get(case.object_id, 0.0), case.percent)
    waits = [c.regain_access_seconds for c in business if c.regain_access_seconds is not None]
    return Usage(
        app_percent=max(app_fields.values()) if app_fields else None,
        app_fields=app_fields,
        business_percent=per_object,
        business=business,
        regain_access_seconds=max(waits) if waits else None,
    )


def suggested_delay(usage: Usage, *, slow_down_at: float = SLOW_DOWN_AT) -> float | None:
    """Seconds to wait before the next call against the same budget, or ``None`` for no wait.

    Meta's own estimate wins when it is positive. At or over 100 % without an estimate the
    answer is :data:`THROTTLED_DELAY`; between ``slow_down_at`` and 100 % the delay grows
    linearly up to :data:`MAX_SLOWDOWN_DELAY`.
    """
    if usage.regain_access_seconds:
        return usage.regain_access_seconds
    percent = usage.max_percent
    if percent is None or percent < slow_down_at:
        return None
    if percent >= 100.0:
        return THROTTLED_DELAY
    share = (percent - slow_down_at) / (100.0 - slow_down_at)
    return max(1.0, round(share * MAX_SLOWDOWN_DELAY, 1))
