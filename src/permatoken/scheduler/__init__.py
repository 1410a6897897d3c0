"""The scheduler: claims due credentials with leases, runs them through the renewal engine
within call budgets, and records notices for humans. See docs/scheduler.md.

Names are loaded on first use, so ``permatoken.scheduler.policies`` (which ``status`` reads)
does not drag in the engine, httpx and the notifier.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .budgets import Budgets, Limits, costs
    from .core import Claim, Scheduler, TickReport
    from .policies import PolicyLayers, get_tenant_policy, set_tenant_policy

_WHERE = {
    "Budgets": "budgets",
    "Limits": "budgets",
    "costs": "budgets",
    "Claim": "core",
    "Scheduler": "core",
    "TickReport": "core",
    "PolicyLayers": "policies",
    "get_tenant_policy": "policies",
    "set_tenant_policy": "policies",
}

__all__ = [
    "Budgets",
    "Claim",
    "Limits",
    "PolicyLayers",
    "Scheduler",
    "TickReport",
    "costs",
    "get_tenant_policy",
    "set_tenant_policy",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
