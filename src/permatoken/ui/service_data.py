"""What the service page shows: replicas and leases, budgets, last backup, audit chain, keys
(encryption keys for everyone; API keys for admins).

Replica names, app ids and budget keys are not credential names a grant covers, so they are
shown only to keys without grants (as ``/metrics`` shows its aggregate view); leases are
narrowed to the names the key sees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..access import Action, Role
from ..backup.status import last_backup_json
from ..scheduler.budgets import Limits
from ..server.broker import Broker
from ..store import ui_service
from ..store.backups import BackupLog
from .web import Viewer


def collect(b: Broker, viewer: Viewer) -> dict[str, Any]:
    now = b.engine.clock.now()
    p = viewer.principal
    unrestricted = not p.grants
    s = b.settings
    limits = Limits(
        s.budget_app_per_hour, s.budget_waba_per_hour, dict(s.budget_waba_overrides), s.budget_share
    )
    budgets = []
    if unrestricted:
        for key, spent in ui_service.budget_spend_by_key(b.store, now).items():
            budgets.append({"key": key, "spent": spent, "limit": limits.limit(key)})
    verification = b.audit.verify()
    keys = b.store.key_problems()
    backups = BackupLog(b.store)
    api_keys = None
    if p.may(Action.KEYS):
        from ..server.guards import key_visible

        wall = datetime.now(UTC)
        mine = [k for k in b.keys.list() if key_visible(p, k)]
        api_keys = {
            "active": {
                role.value: sum(1 for k in mine if k.role is role and k.usable_at(wall))
                for role in Role
            },
            "expiring": [
                k
                for k in mine
                if k.usable_at(wall)
                and k.expires_at is not None
                and k.expires_at < wall + timedelta(days=7)
            ],
            "revoked": sum(1 for k in mine if k.revoked_at is not None),
        }
    return {
        "unrestricted": unrestricted,
        "this_replica": b.engine.owner,
        "scheduler_alive": b.scheduler_alive(),
        "replicas": ui_service.replicas(b.store, now) if unrestricted else [],
        "leases": [r for r in ui_service.leases(b.store, now) if p.sees(r["name"])],
        "budgets": budgets,
        "last_backup": last_backup_json(backups.last(), now),
        "last_failed_backup": last_backup_json(backups.last(state="failed"), now),
        "audit": verification,
        "key_source": b.store.keyring.source,
        "key_active": b.store.keyring.active_id,
        "key_problems": [str(k) for k in keys],
        "api_keys": api_keys,
    }


__all__ = ["collect"]
