"""Fault injection: added latency, forced errors, dropped connections and timeouts per endpoint.

A fault matches an endpoint name (``"POST /{phone-number-id}/messages"``) or ``"*"`` for every
Graph/BSP endpoint; the control API is never faulted. It fires for the next ``count`` matching
calls, or for a ``fraction`` of them (drawn from a seeded generator so runs repeat), or both.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("error", "latency", "drop", "timeout")


@dataclass
class Fault:
    id: int
    endpoint: str = "*"
    kind: str = "error"
    #: Calls left to hit; ``None`` means unlimited (use with ``fraction``).
    count: int | None = 1
    fraction: float | None = None
    code: int | None = None
    subcode: int | None = None
    http_status: int | None = None
    message: str | None = None
    #: Raw body sent instead of the Meta envelope (a 502 with HTML has been seen, reference 10).
    body: str | None = None
    latency_seconds: float = 0.0
    timeout_seconds: float = 30.0
    hits: int = field(default=0)

    def matches(self, endpoint: str) -> bool:
        return self.endpoint in ("*", endpoint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "count": self.count,
            "fraction": self.fraction,
            "code": self.code,
            "subcode": self.subcode,
            "http_status": self.http_status,
            "message": self.message,
            "body": self.body,
            "latency_seconds": self.latency_seconds,
            "timeout_seconds": self.timeout_seconds,
            "hits": self.hits,
        }


@dataclass
class FaultPlan:
    """What to do with one call: sleep first, then maybe one terminal fault."""

    latency: float = 0.0
    terminal: Fault | None = None


class FaultRegistry:
    """Not thread-safe by itself: :class:`SandboxState` calls it under its lock."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, **spec: Any) -> Fault:
        unknown = set(spec) - (set(Fault.__dataclass_fields__) - {"id", "hits"})
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        for name, kinds in (("endpoint", str), ("message", str), ("body", str)):
            if spec.get(name) is not None and not isinstance(spec[name], kinds):
                raise ValueError(f"{name} must be a string")
        for name in ("code", "subcode"):
            value = spec.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be an integer")
        kind = spec.get("kind", "error")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        count = spec.get("count", 1 if spec.get("fraction") is None else None)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null")
        fraction = spec.get("fraction")
        if fraction is not None and not (
            isinstance(fraction, int | float) and 0.0 < fraction <= 1.0
        ):
            raise ValueError("fraction must be in (0, 1]")
        if kind == "error" and spec.get("code") is None and spec.get("http_status") is None:
            raise ValueError("an error fault needs a code or an http_status")
        status = spec.get("http_status")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("http_status must be an integer from 400 to 599")
        for name in ("latency_seconds", "timeout_seconds"):
            value = spec.get(name, 0.0)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number")
        fault = Fault(id=next(self._ids), **{**spec, "count": count})
        self._faults.append(fault)
        return fault

    def plan(self, endpoint: str) -> FaultPlan:
        """Consume the faults that fire for one call of ``endpoint``."""
        plan = FaultPlan()
        for fault in list(self._faults):
            if not fault.matches(endpoint):
                continue
            if fault.kind != "latency" and plan.terminal is not None:
                continue
            if fault.fraction is not None and self._random.random() >= fault.fraction:
                continue
            fault.hits += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
            if fault.kind == "latency":
                plan.latency += fault.latency_seconds
            else:
                plan.latency += fault.latency_seconds
                plan.terminal = fault
        return plan

    def remove(self, fault_id: int) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._faults]
