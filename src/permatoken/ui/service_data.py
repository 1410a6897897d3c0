"""What the service page shows: replicas and leases, budgets, last backup, audit chain, keys.

Replica names, app ids and budget keys are not credential names a grant covers, so they are
shown only to keys without grants (as ``/metrics`` shows its aggregate view); leases are
narrowed to the names the key sees.
"""

from __future__ import annotations

from typing import Any

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
    }


__all__ = ["collect"]
