"""``permatoken import``: many tokens from a CSV or JSON Lines file, each row judged on its own.

Rows are read and checked one at a time (the file is never held whole in memory), worked in
batches of :data:`BATCH`, and each batch of new credentials is stored in one transaction. A row
is ``created``, ``unchanged`` (the name already holds this very token: a re-run changes
nothing) or ``refused`` with the reason; a refused row never stops the others. ``--dry-run``
judges every row and stores nothing. Reasons never quote a token.

Online (the default) each new token is asked about with ``debug_token`` first, within the
scheduler's per-app budgets (``scheduler/budgets.py``: the spend shared through the database and
the blocks learned from Meta's usage headers). Rows whose app has no budget left are refused
with a reason that says so; re-run later (the created ones are then ``unchanged``) or use
``--offline``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ConflictError, GraphError, NotFoundError, PermatokenError
from .._secret import Secret
from ..health import assess
from ..models import (
    Credential,
    Health,
    NewCredential,
    TokenVersion,
    VersionMeta,
    VersionState,
    tenant_of,
)
from ..policy import Policy
from ..rotation import RenewalEngine, meta_from_debug, plan_next
from ..scheduler.budgets import Budgets, Limits
from ..settings import Settings
from ..store import Store
from ..store.importing import NewImport, current_fingerprints, insert_new
from .import_file import COLUMNS, Row, RowResult, check_private, read_rows

BATCH = 500
#: Longest wait for Meta's usage headers to clear before the app's rows are refused.
MAX_BLOCK_WAIT = 30.0


# --- the work --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "unchanged": self.count("unchanged"),
            "refused": self.count("refused"),
            "rows": [r.to_json() for r in self.rows],
        }


class Importer:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: RenewalEngine,
        *,
        offline: bool,
        dry_run: bool,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.settings, self.store, self.engine = settings, store, engine
        self.offline, self.dry_run = offline, dry_run
        self.progress = progress or (lambda n: None)
        self.budgets = Budgets(
            store,
            Limits(
                settings.budget_app_per_hour,
                settings.budget_waba_per_hour,
                dict(settings.budget_waba_overrides),
                settings.budget_share,
            ),
        )
        self._policies: dict[str, Policy] = {}
        self._apps: dict[str, Secret | None] = {}
        self._seen: dict[str, tuple[int, str]] = {}

    def run(self, rows: Iterator[Row | RowResult]) -> ImportReport:
        report = ImportReport()
        batch: list[Row | RowResult] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                report.rows += self._batch(batch)
                self.progress(len(batch))
                batch = []
        if batch:
            report.rows += self._batch(batch)
            self.progress(len(batch))
        return report

    def _batch(self, batch: Sequence[Row | RowResult]) -> list[RowResult]:
        rows = [r for r in batch if isinstance(r, Row)]
        stored = current_fingerprints(self.store, (r.name for r in rows))
        results: dict[int, RowResult] = {}
        fresh: list[tuple[Row, NewImport]] = []
        for item in batch:
            if isinstance(item, RowResult):
                results[item.line] = item
                continue
            verdict = self._judge(item, stored)
            if isinstance(verdict, RowResult):
                results[item.line] = verdict
            else:
                fresh.append((item, verdict))
        if fresh and not self.dry_run:
            self._store(fresh, results)
        else:
            for row, _ in fresh:
                results[row.line] = RowResult(row.line, row.name, "created", "dry run: not stored")
        return [results[item.line] for item in batch]

    def _judge(self, row: Row, stored: dict[str, str | None]) -> NewImport | RowResult:
        fp = row.token.fingerprint
        seen = self._seen.get(row.name)
        if seen is not None:
            if seen[1] == fp:
                return RowResult(row.line, row.name, "unchanged", f"same as line {seen[0]}")
            return RowResult(
                row.line, row.name, "refused", f"line {seen[0]} has this name with another token"
            )
        self._seen[row.name] = (row.line, fp)
        if row.name in stored:
            if stored[row.name] == fp:
                return RowResult(row.line, row.name, "unchanged")
            return RowResult(
                row.line,
                row.name,
                "refused",
                "the credential exists with another token; to replace it run "
                f"`permatoken rotate {row.name} --token-file FILE`",
            )
        try:
            meta = self._offline_meta(row) if self.offline else self._inspect(row)
        except _Refused as exc:
            return RowResult(row.line, row.name, "refused", exc.reason)
        return self._new(row, meta)

    def _offline_meta(self, row: Row) -> VersionMeta:
        if row.expires_at is None and not row.never_expires:
            raise _Refused("no expires_at: give an ISO 8601 time or 'never', or import online")
        return VersionMeta(
            token_type=None, expires_at=row.expires_at, waba_ids=row.waba_ids, is_valid=None
        )

    def _app_secret(self, app_id: str) -> Secret | None:
        if app_id not in self._apps:
            try:
                self._apps[app_id] = self.store.app_secret(app_id)
            except NotFoundError:
                self._apps[app_id] = None
        return self._apps[app_id]

    def _inspect(self, row: Row) -> VersionMeta:
        if row.app_id is None:
            raise _Refused("online inspection needs app_id (or import with --offline)")
        secret = self._app_secret(row.app_id)
        if secret is None:
            raise _Refused(
                f"app {row.app_id} is not registered: `permatoken app add {row.app_id} "
                "--secret-file FILE` first"
            )
        self._spend(row.app_id)
        try:
            result = self.engine.graph.debug_token(row.token, app_id=row.app_id, app_secret=secret)
        except GraphError as exc:
            self.budgets.observe(exc.usage, row.app_id, self.engine.clock.now())
            raise _Refused(f"Meta could not inspect it: {exc.error.describe()}") from None
        now = self.engine.clock.now()
        self.budgets.observe(self.engine.graph.last_usage, row.app_id, now)
        said = self.engine.describe(result)
        if not result.is_valid:
            raise _Refused(f"Meta says it is not valid: {said.summary}")
        if result.app_id and result.app_id != row.app_id:
            raise _Refused(f"the token belongs to app {result.app_id}, not {row.app_id}")
        meta = meta_from_debug(result, now=now, summary=said.summary)
        if not meta.waba_ids and row.waba_ids:
            meta = VersionMeta(**{**_fields(meta), "waba_ids": row.waba_ids})
        return meta

    def _spend(self, app_id: str) -> None:
        key = f"app:{app_id}"
        now = self.engine.clock.now()
        blocked = self.budgets.blocked_until([key], now)
        if blocked is not None:
            wait = (blocked - now).total_seconds()
            if wait > MAX_BLOCK_WAIT:
                raise _Refused(f"Meta asked to slow down for app {app_id}; re-run the import later")
            time.sleep(max(wait, 0.0))  # Meta's own estimate of when calls are welcome again
        later = self.budgets.reserve({key: 1}, self.engine.clock.now())
        if later is not None:
            raise _Refused(
                f"the hourly call budget of app {app_id} is spent until {later:%H:%M} UTC; "
                "re-run the import then (stored rows will be unchanged) or use --offline"
            )

    def _new(self, row: Row, meta: VersionMeta) -> NewImport:
        spec = NewCredential(
            name=row.name,
            issuer=row.issuer,
            business_id=row.business_id,
            waba_ids=row.waba_ids or meta.waba_ids,
            phone_number_id=row.phone_number_id,
            app_id=row.app_id,
        )
        now = self.engine.clock.now()
        health = assess(Health.OK, meta, now)
        draft = Credential(
            0,
            spec.name,
            tenant_of(spec.name),
            spec.issuer,
            None,
            spec.business_id,
            spec.waba_ids,
            spec.phone_number_id,
            spec.app_id,
            health,
            None,
        )
        policy = self._policies.get(draft.tenant)
        if policy is None:
            policy = self._policies[draft.tenant] = self.engine.policy_for(draft)
        version = TokenVersion(
            0, 1, VersionState.CURRENT, row.token.fingerprint, "", meta, now, now
        )
        due, action = plan_next(policy, version, draft, now)
        return NewImport(spec, row.token, meta, health, due, action)

    def _store(self, fresh: list[tuple[Row, NewImport]], results: dict[int, RowResult]) -> None:
        try:
            insert_new(self.store, [item for _, item in fresh])
        except (ConflictError, PermatokenError):
            # A name taken meanwhile (or one bad row): store them one at a time instead.
            for row, item in fresh:
                try:
                    insert_new(self.store, [item])
                except PermatokenError as exc:
                    results[row.line] = RowResult(row.line, row.name, "refused", exc.message)
                else:
                    results[row.line] = RowResult(row.line, row.name, "created")
            return
        for row, _ in fresh:
            results[row.line] = RowResult(row.line, row.name, "created")


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fields(meta: VersionMeta) -> dict[str, Any]:
    return {f: getattr(meta, f) for f in VersionMeta.__dataclass_fields__}


__all__ = ["COLUMNS", "ImportReport", "Importer", "Row", "RowResult", "check_private", "read_rows"]
