"""Real counters behind ``X-App-Usage``, ``X-Business-Use-Case-Usage`` and the throttling errors.

Every window is measured on the sandbox clock, so advancing the clock an hour refills budgets.
Throttled calls still count, as Meta's do: usage above 100 % is normal (reference section 10).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict, deque
from dataclasses import dataclass

from permatoken.sandbox.config import SandboxConfig
from permatoken.sandbox.errors import GraphAPIError, throttled

HOUR = 3600.0


@dataclass
class _Bucket:
    """Token bucket for the per-recipient pair limit: ``burst`` messages, one back per interval."""

    tokens: float
    updated: float


class UsageMeter:
    """Not thread-safe by itself: :class:`SandboxState` calls it under its lock."""

    def __init__(self) -> None:
        self._app_calls: dict[str, deque[float]] = defaultdict(deque)
        self._app_time: dict[str, deque[tuple[float, float]]] = defaultdict(deque)
        self._waba_calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._phone_sends: dict[str, deque[float]] = defaultdict(deque)
        self._pairs: dict[tuple[str, str], _Bucket] = {}

    # -- per app (Platform rate limit, code 4) --------------------------------------------------

    def record_app_call(self, app_id: str, now: float, config: SandboxConfig) -> None:
        calls = _prune(self._app_calls[app_id], now - HOUR)
        calls.append(now)
        if len(calls) > config.app_calls_per_hour:
            raise throttled(4, config.throttle_http_status)

    def record_app_time(self, app_id: str, now: float, seconds: float) -> None:
        self._app_time[app_id].append((now, seconds))

    def app_usage(self, app_id: str, now: float, config: SandboxConfig) -> dict[str, int]:
        calls = len(_prune(self._app_calls[app_id], now - HOUR))
        spent = self._app_time[app_id]
        while spent and spent[0][0] < now - HOUR:
            spent.popleft()
        seconds = sum(s for _, s in spent)
        time_pct = _percent(seconds, config.app_time_budget_seconds)
        return {
            "call_count": _percent(calls, config.app_calls_per_hour),
            # The sandbox runs in one process: CPU time and wall time are the same measure.
            "total_cputime": time_pct,
            "total_time": time_pct,
        }

    def app_header(self, app_id: str, now: float, config: SandboxConfig) -> str | None:
        usage = self.app_usage(app_id, now, config)
        if not config.usage_headers_at_zero and not any(usage.values()):
            return None
        return json.dumps(usage, separators=(",", ":"))

    # -- per app per WABA (Business Use Case limit, 80007/80008) -------------------------------

    def record_waba_call(
        self, app_id: str, waba_id: str, active: bool, now: float, config: SandboxConfig
    ) -> None:
        calls = _prune(self._waba_calls[(app_id, waba_id)], now - HOUR)
        calls.append(now)
        if len(calls) > _waba_budget(active, config):
            raise throttled(config.waba_throttle_code, config.throttle_http_status)

    def buc_header(
        self, app_id: str, waba_id: str, active: bool, now: float, config: SandboxConfig
    ) -> str:
        calls = _prune(self._waba_calls[(app_id, waba_id)], now - HOUR)
        budget = _waba_budget(active, config)
        regain = 0
        if len(calls) >= budget and calls:
            # Minutes until enough calls leave the window to get back under the budget.
            index = min(len(calls) - budget, len(calls) - 1)
            regain = max(1, math.ceil((calls[index] + HOUR - now) / 60))
        pct = _percent(len(calls), budget)
        entry = {
            "type": config.buc_type,
            "call_count": pct,
            "total_cputime": pct,
            "total_time": pct,
            "estimated_time_to_regain_access": regain,
        }
        return json.dumps({waba_id: [entry]}, separators=(",", ":"))

    # -- per phone number (throughput 130429) and per recipient (pair limit 131056) ------------

    def record_send(self, phone_id: str, recipient: str, now: float, config: SandboxConfig) -> None:
        sends = _prune(self._phone_sends[phone_id], now - 1.0)
        if len(sends) >= config.messages_per_second:
            raise throttled(
                130429,
                config.throttle_http_status,
                error_data={
                    "messaging_product": "whatsapp",
                    "details": "Cloud API message throughput has been reached.",
                },
            )
        bucket = self._pairs.get((phone_id, recipient))
        if bucket is None:
            bucket = self._pairs[(phone_id, recipient)] = _Bucket(float(config.pair_burst), now)
        refill = (now - bucket.updated) / config.pair_interval_seconds
        bucket.tokens = min(float(config.pair_burst), bucket.tokens + max(0.0, refill))
        bucket.updated = now
        if bucket.tokens < 1.0:
            # Pair-limit errors come back as HTTP 400 in real logs (reference 5.2).
            raise GraphAPIError(
                131056,
                status=400,
                error_data={
                    "messaging_product": "whatsapp",
                    "details": "Message failed to send because there were too many messages "
                    "sent from this phone number to the same phone number in a short period "
                    "of time.",
                },
            )
        bucket.tokens -= 1.0
        sends.append(now)


def _prune(window: deque[float], cutoff: float) -> deque[float]:
    while window and window[0] < cutoff:
        window.popleft()
    return window


def _percent(used: float, budget: float) -> int:
    return 100 if budget <= 0 else math.floor(used * 100 / budget)


def _waba_budget(active: bool, config: SandboxConfig) -> int:
    return config.active_waba_calls_per_hour if active else config.waba_calls_per_hour
