"""Fault injection: added latency, forced errors, arbitrary answers, dropped connections, timeouts.

A fault matches an endpoint name (``"POST /{phone-number-id}/messages"``) or ``"*"`` for every
Graph/BSP endpoint; the control API is never faulted. It fires for the next ``count`` matching
calls, or for a ``fraction`` of them (drawn from a seeded generator so runs repeat), or both.

``respond`` answers with any status (2xx included) and any body: ``json`` (any JSON value) or raw
``body`` text, repeated ``repeat`` times between ``body_prefix`` and ``body_suffix`` (so a 100 KB
token or a 10 MB page fits in a small control request), with extra ``headers``, optionally sent
``chunk_bytes`` at a time with ``chunk_delay_seconds`` between chunks (a slow drip).
"""

from __future__ import annotations

import itertools
import json as jsonlib
import random
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("error", "latency", "drop", "timeout", "respond")
#: A respond fault's body is built in memory: keep a typo from eating the machine.
MAX_RESPOND_BYTES = 64 * 1024 * 1024
_UNSET: Any = object()
_RESPOND_ONLY = frozenset(
    {"json", "headers", "content_type", "repeat", "body_prefix", "body_suffix", "chunk_bytes"}
    | {"chunk_delay_seconds"}
)


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
    #: ``respond`` only: a JSON value to send (``body`` is the raw-text alternative).
    json: Any = _UNSET
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    repeat: int = 1
    body_prefix: str = ""
    body_suffix: str = ""
    chunk_bytes: int | None = None
    chunk_delay_seconds: float = 0.0
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
            "json": None if self.json is _UNSET else self.json,
            "headers": dict(self.headers),
            "content_type": self.content_type,
            "repeat": self.repeat,
            "body_prefix": self.body_prefix,
            "body_suffix": self.body_suffix,
            "chunk_bytes": self.chunk_bytes,
            "chunk_delay_seconds": self.chunk_delay_seconds,
            "hits": self.hits,
        }

    def answer(self) -> tuple[int, bytes, dict[str, str]]:
        """A ``respond`` fault's status, body and headers (pure)."""
        if self.json is not _UNSET:
            middle, kind = jsonlib.dumps(self.json), "application/json"
        else:
            middle, kind = self.body or "", "text/plain; charset=utf-8"
        body = (self.body_prefix + middle * self.repeat + self.body_suffix).encode()
        headers = {"content-type": self.content_type or kind}
        headers.update({k.lower(): v for k, v in self.headers.items()})
        return self.http_status or 200, body, headers


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
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise ValueError("http_status must be an integer")
        for name in ("latency_seconds", "timeout_seconds", "chunk_delay_seconds"):
            value = spec.get(name, 0.0)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number")
        if kind == "respond":
            _check_respond(spec)
        elif set(spec) & _RESPOND_ONLY:
            raise ValueError(f"{', '.join(sorted(set(spec) & _RESPOND_ONLY))}: respond faults only")
        elif status is not None and not 400 <= status <= 599:
            raise ValueError("http_status must be an integer from 400 to 599")
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


def _check_respond(spec: dict[str, Any]) -> None:
    status = spec.get("http_status")
    if status is not None and not 200 <= status <= 599:
        raise ValueError("a respond fault's http_status must be from 200 to 599")
    if "json" in spec and spec.get("body") is not None:
        raise ValueError("give json or body, not both")
    for name in ("content_type", "body_prefix", "body_suffix"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise ValueError(f"{name} must be a string")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
        for k, v in headers.items()
    ):
        raise ValueError("headers must map ASCII strings to ASCII strings")
    for name, default in (("repeat", 1), ("chunk_bytes", None)):
        value = spec.get(name, default)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer")
    try:
        middle = len(jsonlib.dumps(spec["json"])) if "json" in spec else len(spec.get("body") or "")
    except (TypeError, ValueError) as exc:
        raise ValueError("json must be a JSON value") from exc
    size = len(spec.get("body_prefix", "")) + middle * spec.get("repeat", 1)
    if size + len(spec.get("body_suffix", "")) > MAX_RESPOND_BYTES:
        raise ValueError(f"a respond body is at most {MAX_RESPOND_BYTES} bytes")
