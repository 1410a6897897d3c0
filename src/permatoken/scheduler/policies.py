"""The effective policy of a credential (defaults < settings.policy < tenant < credential).

The tenant layer is stored by :mod:`permatoken.store.tenant_policies` (re-exported here).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..models import Credential
from ..policy import Policy, resolve
from ..settings import Settings
from ..store import Store
from ..store.tenant_policies import all_tenant_policies, get_tenant_policy, set_tenant_policy


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
