"""The scheduler: claims due credentials with leases, runs them through the renewal engine
within call budgets, and records notices for humans. See docs/scheduler.md."""

from .budgets import Budgets, Limits, costs
from .core import Claim, Scheduler, TickReport
from .policies import PolicyLayers, get_tenant_policy, set_tenant_policy

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
