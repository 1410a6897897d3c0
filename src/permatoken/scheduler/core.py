"""The claim loop: what is due, who works on it, and what happens next.

Each credential carries ``next_due_at`` and ``next_action`` (renew, inspect, remind, retire).
A tick claims up to ``batch`` due credentials in one transaction by setting their lease, in
``next_due_at`` order through its index, so its cost follows the work due rather than the number
of credentials stored:

- PostgreSQL: ``SELECT … WHERE next_due_at <= now AND (lease free or expired) ORDER BY
  next_due_at LIMIT n FOR UPDATE SKIP LOCKED`` then the lease ``UPDATE``: replicas never claim the
  same row, and a dead replica's claims return when their lease expires.
- SQLite: one scheduler per database file, enforced by the ``scheduler_leader`` lease row; a
  second one stands by (and takes over when the first stops or dies).

Work runs through the renewal engine under the same owner, which re-takes the lease it already
holds. Budgets (:mod:`.budgets`) postpone work instead of failing it. The other actions run one
by one in due order; then the plain renewals of the tick run together (:mod:`.batch`: each step
written for all of them at once, the same three layers below, about 3 statements a renewal).

Exactly one renewal per token version rests on three layers, each sufficient for the failure
it names and each tested alone in ``tests/scheduler/test_double_renewal.py``:

1. **Claiming** (:meth:`Scheduler.claim`): the due rows are selected ``FOR UPDATE SKIP LOCKED``
   and leased in the same transaction, so replicas ticking at the same moment take disjoint
   rows without waiting for each other (a plain SELECT lets both lease the same rows; a plain
   ``FOR UPDATE`` makes them queue). On SQLite a single leader ticks instead.
2. **Re-check before work** (:meth:`Scheduler._still_ours`): the lease is re-taken (free,
   ours, or expired) and the credential must still be due at the version seen at claim time;
   a claim that outlived its lease (a replica paused past ``lease_ttl``) is dropped unworked.
3. **The engine** (:meth:`RenewalEngine.rotate`): under its in-process lock and the database
   lease, ``expected_version`` must still be current, and every step it persists is fenced by
   the lease owner, so a worker that lost the lease cannot promote.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .._exceptions import GraphError, InputError, NotFoundError, PermatokenError
from ..issuers import issuer_for
from ..meta.errors import ErrorKind
from ..meta.usage import THROTTLED_DELAY
from ..models import Credential, Health, TokenVersion, VersionState
from ..notify import notices as nt
from ..notify.delivery import Deliverer, Outbox, Sender, channels_for
from ..policy import Policy, backoff, next_reminder_at, reminder_due
from ..rotation import RenewalEngine, plan_next
from ..settings import Settings
from ..store import Store
from ..store.schema import credentials, versions
from ..store.schema_scheduler import scheduler_leader
from ..timeutil import Clock
from .budgets import Budgets, Limits, costs
from .policies import PolicyLayers

log = logging.getLogger(__name__)

LEADER = "scheduler"
TROUBLED = (Health.FAILING, Health.NEEDS_HUMAN, Health.INVALID, Health.EXPIRED)
#: Failure kinds that deserve a notice only when they repeat (one blip is not news).
_BLIPS = {ErrorKind.TRANSIENT.value, ErrorKind.UNKNOWN.value, "upstream"}


@dataclass
class TickReport:
    claimed: int = 0
    renewed: int = 0
    inspected: int = 0
    reminded: int = 0
    retired: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    lag_seconds: float = 0.0
    seconds: float = 0.0
    standby: bool = False
    #: The database cannot be used as opened (SQLite file deleted, replaced, read-only).
    paused: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Claim:
    name: str
    action: str | None
    due: datetime
    version: int | None


class Scheduler:
    """Claims due credentials and works on them; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: RenewalEngine,
        *,
        clock: Clock | None = None,
        batch: int | None = None,
        lease_ttl: float | None = None,
        sender: Sender | None = None,
        interval: float | None = None,
        concurrency: int | None = None,
        _batched: bool = True,
    ) -> None:
        """``_batched=False`` keeps the one-by-one path of earlier releases, for
        ``bench/bench_scheduler.py``'s before/after comparison only."""
        self.settings = settings
        self.store = store
        self.engine = engine
        self.clock: Clock = clock or engine.clock
        self.owner = engine.owner
        self.batch = batch if batch is not None else settings.scheduler_batch
        self.lease_ttl = lease_ttl if lease_ttl is not None else settings.scheduler_lease_ttl
        # The engine re-takes the same lease while it rotates: one expiry for both, so the
        # work of a replica that died returns after ``lease_ttl`` whatever step it died in.
        engine.lease_ttl = self.lease_ttl
        self.interval = interval if interval is not None else settings.scheduler_interval
        self.concurrency = (
            concurrency if concurrency is not None else settings.scheduler_concurrency
        )
        self.obtain_concurrency = settings.scheduler_obtain_concurrency
        self._batched = _batched
        self.layers = PolicyLayers(settings, store)
        if getattr(engine, "_fixed_policy", None) is None and engine.policy_resolver is None:
            engine.policy_resolver = self.layers.for_credential
        self.budgets = Budgets(
            store,
            Limits(
                settings.budget_app_per_hour,
                settings.budget_waba_per_hour,
                dict(settings.budget_waba_overrides),
                settings.budget_share,
            ),
        )
        self.outbox = Outbox(store, owner=self.owner, clock=self.clock)
        self.deliverer = Deliverer(
            store, settings, owner=self.owner, clock=self.clock, sender=sender
        )
        self.events = frozenset(settings.notify_events)
        engine.on_event.append(self._on_event)
        self.last_tick_at: datetime | None = None
        self.last_report: TickReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._leader: bool | None = None

    def __repr__(self) -> str:
        return f"Scheduler(owner={self.owner!r}, batch={self.batch})"

    # --- leadership (SQLite) --------------------------------------------------------------
    def _lead(self, now: datetime) -> bool:
        ttl = timedelta(seconds=max(self.lease_ttl, 3 * self.interval))
        with self.store.write() as conn:
            row = conn.execute(
                sa.select(scheduler_leader).where(scheduler_leader.c.name == LEADER)
            ).first()
            if row is None:
                conn.execute(
                    scheduler_leader.insert().values(
                        name=LEADER, owner=self.owner[:80], expires_at=now + ttl, acquired_at=now
                    )
                )
                ok, holder = True, self.owner
            elif row.owner == self.owner[:80] or row.expires_at < now:
                conn.execute(
                    scheduler_leader.update()
                    .where(scheduler_leader.c.name == LEADER)
                    .values(
                        owner=self.owner[:80],
                        expires_at=now + ttl,
                        **({} if row.owner == self.owner[:80] else {"acquired_at": now}),
                    )
                )
                ok, holder = True, self.owner
            else:
                ok, holder = False, row.owner
        if ok != self._leader:
            if ok:
                log.info("scheduler %s runs this SQLite database", self.owner)
            else:
                log.warning(
                    "another scheduler (%s) already runs this SQLite database; SQLite allows one "
                    "scheduler per database file, so %s stands by and takes over if it stops",
                    holder,
                    self.owner,
                )
            self._leader = ok
        return ok

    def _resign(self) -> None:
        if self.store.dialect != "sqlite" or not self._leader:
            return
        try:
            with self.store.write() as conn:
                conn.execute(
                    scheduler_leader.delete().where(
                        scheduler_leader.c.name == LEADER,
                        scheduler_leader.c.owner == self.owner[:80],
                    )
                )
        except PermatokenError:
            log.warning("could not release the scheduler lease; it expires on its own")
        self._leader = None

    # --- claiming ---------------------------------------------------------------------------
    def claim_query(self, now: datetime) -> sa.Select[Any]:
        q = (
            sa.select(
                credentials.c.id,
                credentials.c.name,
                credentials.c.next_action,
                credentials.c.next_due_at,
            )
            .where(
                credentials.c.next_due_at <= now,
                sa.or_(credentials.c.lease_owner.is_(None), credentials.c.lease_expires_at < now),
            )
            .order_by(credentials.c.next_due_at)
            .limit(self.batch)
        )
        if self.store.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        return q

    def claim(self, now: datetime) -> list[Claim]:
        with self.store.write() as conn:
            rows = conn.execute(self.claim_query(now)).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            conn.execute(
                credentials.update()
                .where(credentials.c.id.in_(ids))
                .values(
                    lease_owner=self.owner[:80],
                    lease_expires_at=now + timedelta(seconds=self.lease_ttl),
                )
            )
            current = dict(
                conn.execute(
                    sa.select(versions.c.credential_id, versions.c.version).where(
                        versions.c.credential_id.in_(ids), versions.c.state == "current"
                    )
                )
                .tuples()
                .all()
            )
        return [Claim(r.name, r.next_action, r.next_due_at, current.get(r.id)) for r in rows]

    # --- one tick -------------------------------------------------------------------------
    def tick(self) -> TickReport:
        """Claim due work once and run it; returns what happened."""
        started = time.perf_counter()
        now = self.clock.now()
        report = TickReport()
        if self.store.unavailable() is not None:  # logged once by the store
            report.paused = True
            return self._done(report, now, started)
        if self.store.dialect == "sqlite" and not self._lead(now):
            report.standby = True
            return self._done(report, now, started)
        claims = self.claim(now)
        report.claimed = len(claims)
        if claims:
            report.lag_seconds = max(0.0, max((now - c.due).total_seconds() for c in claims))
        if self._batched:
            # In due order as before for the other actions; then the renewals, together.
            renewals = [c for c in claims if c.action == "renew"]
            if self._work_each([c for c in claims if c.action != "renew"], report):
                from .batch import BatchRenewal

                renewals = BatchRenewal(self, report).run(renewals)
            claims = renewals
        self._work_each(claims, report)
        return self._done(report, now, started)

    def _work_each(self, claims: list[Claim], report: TickReport) -> bool:
        """Work the claims one by one; False if stopping (the rest handed back untouched)."""
        for i, c in enumerate(claims):
            if self._stop.is_set():
                for rest in claims[i:]:  # shutting down: hand the rest back untouched
                    self.store.release_lease(rest.name, self.owner)
                return False
            try:
                self._work(c, report)
            except NotFoundError:
                report.skipped += 1  # removed meanwhile
            except Exception:
                report.failed += 1
                log.exception("scheduled %s of %s failed", c.action, c.name)
                self._postpone(c.name, self.clock.now() + timedelta(minutes=5), c.action)
            finally:
                try:
                    self.store.release_lease(c.name, self.owner)
                except PermatokenError:
                    log.warning("could not release the lease on %s; it expires on its own", c.name)
        return not self._stop.is_set()

    def _done(self, report: TickReport, now: datetime, started: float) -> TickReport:
        report.seconds = time.perf_counter() - started
        self.last_tick_at = now
        self.last_report = report
        self.deliverer.wake()
        return report

    def _still_ours(self, c: Claim) -> Credential | None:
        """Re-take the lease (ours unless it expired and someone else took it) and re-check."""
        if not self.store.acquire_lease(c.name, self.owner, self.lease_ttl):
            return None
        cred = self.store.get(c.name)
        now = self.clock.now()
        if cred.next_due_at is None or cred.next_due_at > now or cred.current_version != c.version:
            return None  # another worker already did it
        return cred

    def _work(self, c: Claim, report: TickReport) -> None:
        cred = self._still_ours(c)
        if cred is None:
            report.skipped += 1
            return
        now = self.clock.now()
        # A step left by a dead worker is finished first, whatever was planned next.
        action = "renew" if cred.rotation_step else (cred.next_action or "inspect")
        policy = self.layers.for_credential(cred)
        wanted = costs(action, cred)
        later = self.budgets.reserve(wanted, now)
        if later is not None:
            self._postpone(cred.name, later, action)
            report.deferred += 1
            return
        if action == "renew":
            self._renew(cred, c.version, policy, report)
        elif action == "inspect":
            self._inspect(cred, policy, report)
        elif action == "retire":
            self.engine.retire_previous(cred.name)
            report.retired += 1
            self.replan(cred.name)
        else:
            self.replan(cred.name)
        cred = self.store.get(cred.name)
        if self._remind(cred, self.layers.for_credential(cred)):
            report.reminded += 1

    def _renew(
        self, cred: Credential, version: int | None, policy: Policy, report: TickReport
    ) -> None:
        outcome = self.engine.rotate(
            cred.name, reason="scheduled", expected_version=version, wait=False
        )
        now = self.clock.now()
        self.budgets.observe(self.engine.graph.last_usage, cred.app_id, now)
        if outcome.status == "rotated":
            report.renewed += 1
        elif outcome.status == "deferred":
            report.deferred += 1
            if outcome.retry_at is not None:
                for key in costs("renew", cred):
                    self.budgets.block(key, outcome.retry_at)
        elif outcome.status == "busy":
            report.skipped += 1
            self._postpone(cred.name, now + timedelta(seconds=30), "renew")
            return
        elif outcome.status in ("failed", "needs_human"):
            report.failed += 1
        fresh = self.store.get(cred.name)
        if fresh.next_due_at is None or fresh.next_due_at <= now:
            self.replan(cred.name)

    def _inspect(self, cred: Credential, policy: Policy, report: TickReport) -> None:
        now = self.clock.now()
        try:
            insp = self.engine.inspect(cred.name)
        except InputError:
            # Nothing to inspect with (no app registered): only the reminders can help.
            self.replan(cred.name, inspected=False)
            return
        except GraphError as exc:
            self.budgets.observe(getattr(exc, "usage", None), cred.app_id, now)
            if exc.error.kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT, ErrorKind.UNKNOWN):
                wait = exc.error.retry_after or (
                    THROTTLED_DELAY if exc.error.kind is ErrorKind.THROTTLED else backoff(policy, 1)
                )
                until = now + timedelta(seconds=wait)
                if exc.error.kind is ErrorKind.THROTTLED:
                    for key in costs("inspect", cred):
                        self.budgets.block(key, until)
                report.deferred += 1
                self._postpone(cred.name, until, "inspect")
                return
            report.failed += 1
            self._postpone(cred.name, now + timedelta(seconds=policy.backoff_cap), "inspect")
            return
        self.budgets.observe(self.engine.graph.last_usage, cred.app_id, now)
        report.inspected += 1
        issuer = issuer_for(cred.issuer)
        if (
            not insp.result.is_valid
            and cred.current_version is not None
            and (
                issuer.recovers_dead
                or (cred.options.get("admin_credential") and cred.options.get("system_user_id"))
            )
        ):
            # A dead token with a way to re-mint: recover now rather than wait for a client.
            self.engine.report_failure(
                cred.name, cred.current_version, actor=f"scheduler:{self.owner}"
            )
        fresh = self.store.get(cred.name)
        if fresh.rotation_step is None and (
            fresh.next_due_at is None or fresh.next_due_at <= now or fresh.next_action == "inspect"
        ):
            self.replan(cred.name)

    def _postpone(self, name: str, at: datetime, action: str | None) -> None:
        try:
            self.store.update_credential(name, next_due_at=at, next_action=action)
        except NotFoundError:
            pass

    # --- planning -------------------------------------------------------------------------
    def replan(self, name: str, *, inspected: bool = True) -> tuple[datetime | None, str | None]:
        """Recompute ``next_due_at``/``next_action`` from the policy and store them."""
        cred = self.store.get(name)
        now = self.clock.now()
        policy = self.layers.for_credential(cred)
        current = _current(self.store, name)
        if current is None:
            due, action = None, None
        else:
            due, action = plan_next(policy, current, cred, now)
            if due is not None and due <= now:
                # The plan points at the past (inspection impossible or failing): move on.
                step = policy.inspect_every if action == "inspect" else policy.backoff_base
                due = now + timedelta(seconds=step)
            candidates: list[tuple[datetime, str]] = [(due, action or "inspect")] if due else []
            for v in self.store.versions(name):
                if v.state is VersionState.PREVIOUS:
                    candidates.append(
                        (max(now, v.state_changed_at + timedelta(seconds=policy.grace)), "retire")
                    )
            if self._needs_reminders(cred):
                expires_at = current.meta.expires_at
                at = next_reminder_at(policy, expires_at, now)
                if at is not None:
                    candidates.append((at, "remind"))
                crossed = reminder_due(policy, expires_at, now)
                if crossed is not None and not self.outbox.already(
                    nt.reminder_key(name, current.version, crossed)
                ):
                    candidates.append((now, "remind"))
                if expires_at is not None and not self.outbox.already(
                    nt.expired_key(name, current.version)
                ):
                    # Wake at the expiry itself to say so (the "expired" notice).
                    candidates.append((max(expires_at, now), "remind"))
            due, action = min(candidates) if candidates else (None, None)
        self.store.update_credential(name, next_due_at=due, next_action=action)
        return due, action

    def _needs_reminders(self, cred: Credential) -> bool:
        return not issuer_for(cred.issuer).automatic or cred.health in TROUBLED

    # --- notices --------------------------------------------------------------------------
    def _remind(self, cred: Credential, policy: Policy) -> bool:
        """Send the reminder due now for a credential that cannot (or failed to) renew itself,
        or say once that it has expired."""
        if not self._needs_reminders(cred):
            return False
        current = _current(self.store, cred.name)
        if current is None:
            return False
        now = self.clock.now()
        automatic = issuer_for(cred.issuer).automatic
        expires_at = current.meta.expires_at
        if expires_at is not None and expires_at <= now:
            return self._send_expired(cred, current.version, expires_at, now)
        threshold = reminder_due(policy, expires_at, now)
        if threshold is None or expires_at is None:
            return False
        if nt.NoticeEvent.REMINDER.value not in self.events:
            return False
        notice = nt.reminder(
            cred.name,
            cred.tenant,
            current.version,
            expires_at=expires_at,
            threshold=threshold,
            now=now,
            automatic=automatic,
            reason=cred.health_reason if automatic else None,
        )
        return self._send(notice, cred)

    def _send_expired(
        self, cred: Credential, version: int, expires_at: datetime, now: datetime
    ) -> bool:
        automatic = issuer_for(cred.issuer).automatic
        notice = nt.expired(
            cred.name, cred.tenant, version, expires_at=expires_at, now=now, automatic=automatic
        )
        return self._send(notice, cred)

    def _send(self, notice: nt.Notice, cred: Credential) -> bool:
        if notice.event.value not in self.events:
            return False
        return self.outbox.enqueue(notice, channels_for(self.settings, cred.tenant, cred.options))

    def _on_event(self, kind: str, name: str, detail: dict[str, Any]) -> None:
        """Engine events → notices (called on the engine's thread; only records, never sends)."""
        if kind not in ("rotation.failed", "rotation.completed", "inspected"):
            return
        if detail.get("batched"):
            return  # a batched renewal that already found nothing to notice (see batch.py)
        try:
            cred = self.store.get(name)
        except NotFoundError:
            return
        current = _current(self.store, name)
        version = current.version if current else 0
        expires = current.meta.expires_at if current else None
        now = self.clock.now()
        if kind == "rotation.failed":
            fkind = str(detail.get("kind") or "")
            if fkind == ErrorKind.THROTTLED.value:
                return  # a throttle is a delay, not a failure
            reason = str(detail.get("reason") or cred.health_reason or "unknown error")
            if detail.get("needs_human"):
                self._send(
                    nt.needs_human(
                        name, cred.tenant, version, reason=reason, expires_at=expires, now=now
                    ),
                    cred,
                )
            elif fkind not in _BLIPS or int(detail.get("attempt") or 1) >= 2:
                self._send(
                    nt.renewal_failed(
                        name,
                        cred.tenant,
                        version,
                        reason=reason,
                        kind=fkind or None,
                        expires_at=expires,
                        retry_at=cred.next_due_at,
                        now=now,
                    ),
                    cred,
                )
        elif kind == "rotation.completed":
            number = int(detail.get("version") or version)
            prev = detail.get("previous")
            if prev is not None and self.outbox.has_event(name, int(prev), nt.TROUBLE):
                self._send(
                    nt.recovered(name, cred.tenant, number, expires_at=expires, now=now), cred
                )
            self._send(
                nt.renewed(name, cred.tenant, number, previous=prev, expires_at=expires, now=now),
                cred,
            )
        elif kind == "inspected":
            number = int(detail.get("version") or version)
            if number != version:
                return  # a pending version being verified is not news
            if not detail.get("valid") and expires is not None and expires <= now:
                # Invalid because it expired: the one "expired" notice says it (and says how).
                self._send_expired(cred, number, expires, now)
            elif not detail.get("valid"):
                self._send(
                    nt.token_invalid(
                        name, cred.tenant, number, verdict=detail.get("verdict"), now=now
                    ),
                    cred,
                )
            elif self.outbox.has_event(name, number, [nt.NoticeEvent.TOKEN_INVALID.value]):
                self._send(
                    nt.recovered(name, cred.tenant, number, expires_at=expires, now=now), cred
                )

    # --- running --------------------------------------------------------------------------
    def run_until(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; deliver notices on a side thread meanwhile."""
        self._running = True
        self.deliverer.start()
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    report = self.tick()
                except PermatokenError as exc:
                    log.warning("scheduler tick failed: %s", exc.message)
                    report = TickReport()
                if report.claimed:
                    log.info("tick: %s", {k: v for k, v in report.to_json().items() if v})
                if report.claimed < self.batch or report.standby:
                    stop.wait(self.interval)
        finally:
            self._running = False
            self.deliverer.stop()
            self._resign()

    def start(self) -> None:
        """Run in a background thread (for the HTTP server's lifespan)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_until, args=(self._stop,), name="permatoken-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the item in hand, hand back the rest of the batch, stop delivering."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.deliverer.stop(timeout)
        self._resign()

    close = stop

    @property
    def alive(self) -> bool:
        return self._running or (self._thread is not None and self._thread.is_alive())


def _current(store: Store, name: str) -> TokenVersion | None:
    try:
        return store.version(name)
    except NotFoundError:
        return None


__all__ = ["Claim", "Scheduler", "TickReport"]
