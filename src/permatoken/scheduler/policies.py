"""The policy layers in the store: tenant policies (table ``tenant_policies``) and the
effective policy of a credential (defaults < settings.policy < tenant < credential)."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa

from ..models import Credential
from ..policy import Policy, parse_overrides, resolve, to_layer
from ..settings import Settings
from ..store import Store
from ..store.schema_scheduler import tenant_policies


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
            conn, "policy.tenant_set", actor="cli", detail={"tenant": tenant, "policy": layer}
        )
    return layer


class PolicyLayers:
    """Resolves effective policies, caching tenant layers for a few seconds."""

    def __init__(self, settings: Settings, store: Store, *, ttl: float = 5.0) -> None:
        self.settings = settings
        self.store = store
        self.ttl = ttl
        self._cache: dict[str, dict[str, Any]] = {}
        self._read_at = -1e9
        self._lock = threading.Lock()

    def tenant(self, tenant: str) -> dict[str, Any]:
        with self._lock:
            if time.monotonic() - self._read_at > self.ttl:
                self._cache = all_tenant_policies(self.store)
                self._read_at = time.monotonic()
            return self._cache.get(tenant, {})

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = -1e9

    def for_credential(self, cred: Credential) -> Policy:
        return resolve(self.settings.policy, self.tenant(cred.tenant), cred.policy)


__all__ = ["PolicyLayers", "all_tenant_policies", "get_tenant_policy", "set_tenant_policy"]
