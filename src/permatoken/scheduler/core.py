"""The tick loop: claim what is due, work on it within budgets, plan what comes next.

A tick claims up to ``batch`` due credentials (:mod:`permatoken.store.claims`: one transaction,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a single leader on SQLite). Work runs through the
renewal engine under the same owner, which re-takes the lease it already holds. Budgets
(:mod:`.budgets`) postpone work instead of failing it. The other actions run one by one in due
order; then the plain renewals of the tick run together (:mod:`.batch`: each step written for
all of them at once, the same three layers, about 3 statements a renewal).

Exactly one renewal per token version rests on three layers (claiming, the re-check in
:meth:`Scheduler._still_ours`, the engine's fenced steps): the contract is stated with the claim
code, in :mod:`permatoken.store.claims`, and each layer is tested alone in
``tests/scheduler/test_double_renewal.py``.

What an engine event means for notices is :mod:`.reactions`; reminders are :mod:`.reminders`.
The scheduler is given an engine built for it (:func:`permatoken.runtime.build_runtime`): one
lease expiry and one policy resolution for both, never changed here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError, GraphError, InputError, NotFoundError, PermatokenError
from ..issuers import issuer_for
from ..meta.errors import ErrorKind
from ..meta.usage import THROTTLED_DELAY
from ..models import Credential, VersionState
from ..notify.delivery import Deliverer, Outbox, Sender
from ..policy import Policy, backoff
from ..rotation import Outcome, RenewalEngine, plan_next
from ..settings import Settings
from ..store import Store
from ..store import claims as sc
from ..store.claims import Claim
from ..timeutil import Clock
from .budgets import Budgets, Limits, costs
from .policies import PolicyLayers
from .reactions import Reactions
from .reminders import Reminders, current_version

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger(__name__)

LEADER = sc.LEADER


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


class Scheduler:
    """Claims due credentials and works on them; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: RenewalEngine,
        *,
        policies: PolicyLayers | None = None,
        clock: Clock | None = None,
        batch: int | None = None,
        lease_ttl: float | None = None,
        sender: Sender | None = None,
        interval: float | None = None,
        concurrency: int | None = None,
        _batched: bool = True,
    ) -> None:
        """``engine`` must have been built for this scheduler: with its ``lease_ttl`` and a
        policy resolver (``policies.for_credential``); a mismatch is refused, never patched.
        ``_batched=False`` keeps the one-by-one path of earlier releases, for
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
        if engine.lease_ttl != self.lease_ttl:
            raise ConfigError(
                f"the scheduler's lease lasts {self.lease_ttl:g} s but its engine's "
                f"{engine.lease_ttl:g} s: a claim and the rotation working on it share one lease",
                hint="build the engine with lease_ttl equal to the scheduler's "
                "(permatoken.runtime.build_runtime does)",
                setting="scheduler_lease_ttl",
            )
        if engine.fixed_policy is None and engine.policy_resolver is None:
            raise ConfigError(
                "the engine resolves policies without the settings and tenant layers the "
                "scheduler plans with",
                hint="build the engine with policy_resolver=PolicyLayers(settings, store)"
                ".for_credential and pass the same layers as policies= "
                "(permatoken.runtime.build_runtime does)",
            )
        self.interval = interval if interval is not None else settings.scheduler_interval
        self.concurrency = (
            concurrency if concurrency is not None else settings.scheduler_concurrency
        )
        self.obtain_concurrency = settings.scheduler_obtain_concurrency
        self._batched = _batched
        self.layers = policies if policies is not None else PolicyLayers(settings, store)
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
            store, settings, owner=self.owner, clock=self.clock, sender=sender, events=engine.events
        )
        self.events = frozenset(settings.notify_events)
        self.reminders = Reminders(
            settings, store, self.outbox, clock=self.clock, events=self.events
        )
        self.reactions = Reactions(store, self.reminders, clock=self.clock)
        # Every rotation of this engine (the API's included) may mean a notice.
        engine.events.subscribe(self.reactions)
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
        ok, holder = sc.lead(self.store, self.owner, now, ttl)
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
            sc.resign(self.store, self.owner)
        except PermatokenError:
            log.warning("could not release the scheduler lease; it expires on its own")
        self._leader = None

    # --- claiming (the SQL and its contract: permatoken.store.claims) -----------------------
    def claim_query(self, now: datetime) -> sa.Select[Any]:
        return sc.claim_query(self.store, now, self.batch)

    def claim(self, now: datetime) -> list[Claim]:
        return sc.claim(self.store, self.owner, now, batch=self.batch, lease_ttl=self.lease_ttl)

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
                self.postpone(c.name, self.clock.now() + timedelta(minutes=5), c.action)
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
            self.postpone(cred.name, later, action)
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
        if self.reminders.remind(cred, self.layers.for_credential(cred)):
            report.reminded += 1

    def _renew(
        self, cred: Credential, version: int | None, policy: Policy, report: TickReport
    ) -> None:
        outcome = self.engine.rotate(
            cred.name, reason="scheduled", expected_version=version, wait=False
        )
        now = self.clock.now()
        self.budgets.observe(self.engine.graph.last_usage, cred.app_id, now)
        if outcome.status == Outcome.ROTATED:
            report.renewed += 1
        elif outcome.status == Outcome.DEFERRED:
            report.deferred += 1
            if outcome.retry_at is not None:
                for key in costs("renew", cred):
                    self.budgets.block(key, outcome.retry_at)
        elif outcome.status == Outcome.BUSY:
            report.skipped += 1
            self.postpone(cred.name, now + timedelta(seconds=30), "renew")
            return
        elif outcome.status in (Outcome.FAILED, Outcome.NEEDS_HUMAN):
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
            self.budgets.observe(exc.usage, cred.app_id, now)
            if exc.error.kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT, ErrorKind.UNKNOWN):
                wait = exc.error.retry_after or (
                    THROTTLED_DELAY if exc.error.kind is ErrorKind.THROTTLED else backoff(policy, 1)
                )
                until = now + timedelta(seconds=wait)
                if exc.error.kind is ErrorKind.THROTTLED:
                    for key in costs("inspect", cred):
                        self.budgets.block(key, until)
                report.deferred += 1
                self.postpone(cred.name, until, "inspect")
                return
            report.failed += 1
            self.postpone(cred.name, now + timedelta(seconds=policy.backoff_cap), "inspect")
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

    def postpone(self, name: str, at: datetime, action: str | None) -> None:
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
        current = current_version(self.store, name)
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
            candidates.extend(self.reminders.wake_times(cred, current, policy, now))
            due, action = min(candidates) if candidates else (None, None)
        self.store.update_credential(name, next_due_at=due, next_action=action)
        return due, action

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


__all__ = ["Claim", "Scheduler", "TickReport"]
