"""Tenant policies (table ``tenant_policies``): the tenant layer of a credential's effective policy.

The layers are resolved by :class:`permatoken.scheduler.policies.PolicyLayers` over the pure rules
of :mod:`permatoken.policy`; this module only reads and writes the tenant layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..events import EventKind
from ..policy import parse_overrides, resolve, to_layer
from .schema_scheduler import tenant_policies

if TYPE_CHECKING:
    from .repository import Store


def get_tenant_policy(store: Store, tenant: str) -> dict[str, Any]:
    with store.read() as conn:
        row = conn.execute(
            sa.select(tenant_policies.c.policy).where(tenant_policies.c.tenant == tenant)
        ).scalar()
    return dict(row or {})


def all_tenant_policies(store: Store) -> dict[str, dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(sa.select(tenant_policies.c.tenant, tenant_policies.c.policy))
        return {r.tenant: dict(r.policy or {}) for r in rows}


def set_tenant_policy(
    store: Store, tenant: str, changes: dict[str, Any], *, unset: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Merge validated ``changes`` into the tenant layer (``unset`` removes keys)."""
    parsed = to_layer(parse_overrides(changes))
    now = store.clock.now()
    with store.write() as conn:
        row = conn.execute(
            sa.select(tenant_policies.c.policy)
            .where(tenant_policies.c.tenant == tenant)
            .with_for_update()
        ).scalar()
        layer = dict(row or {}) | parsed
        for key in unset:
            layer.pop(key, None)
        resolve(layer)  # the merged layer must still make sense
        if row is None:
            conn.execute(
                tenant_policies.insert().values(tenant=tenant, policy=layer, updated_at=now)
            )
        else:
            conn.execute(
                tenant_policies.update()
                .where(tenant_policies.c.tenant == tenant)
                .values(policy=layer, updated_at=now)
            )
        store.record(
            conn,
            EventKind.POLICY_TENANT_SET,
            actor="cli",
            detail={"tenant": tenant, "policy": layer},
        )
    return layer


__all__ = ["all_tenant_policies", "get_tenant_policy", "set_tenant_policy"]
