"""The one assembly point: the long-lived parts of a process, built from settings by constructors.

::

    settings, store ─┬─ EventBus ─────────────┐   (listeners: sinks, scheduler, server)
                     ├─ PolicyLayers ─────────┤
                     ├─ GraphClient ──────────┤
                     │                        └─> RenewalEngine(lease_ttl, policy_resolver, events)
                     │                                  └─> Scheduler(engine, policies)   optional
                     └─ SinkWorker, BackupSchedule                                        optional

What a part needs is built before it and handed to its constructor; nothing is rewired later by
setting another object's attributes. The few decisions that tie parts together are taken here,
once: the engine's lease lasts as long as the scheduler's claims when a scheduler runs (one expiry
for a claim and the rotation working on it), and the engine and the scheduler resolve policies
through the same :class:`~permatoken.scheduler.policies.PolicyLayers`. Listeners subscribe to
the :class:`~permatoken.events.EventBus` and get back the way to unsubscribe.

``permatoken serve`` uses :func:`build_runtime`; the other commands need only an engine
(:func:`build_engine`, also reachable as ``permatoken.service.build_engine``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import EventBus
from .meta.graph import GraphClient
from .rotation import RenewalEngine
from .settings import Settings
from .store import Store
from .timeutil import Clock

if TYPE_CHECKING:
    from .backup.schedule import BackupSchedule
    from .scheduler import Scheduler
    from .scheduler.policies import PolicyLayers
    from .sinks.worker import SinkWorker

__all__ = ["Runtime", "build_engine", "build_graph", "build_runtime"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What :func:`build_runtime` built; :meth:`close` stops and closes it (not the store)."""

    settings: Settings
    store: Store
    events: EventBus
    policies: PolicyLayers
    engine: RenewalEngine
    #: None when this process does not schedule (``serve --no-scheduler``, commands).
    scheduler: Scheduler | None = None
    #: Background work that runs beside the scheduler (not started until :meth:`start_background`).
    sinks: SinkWorker | None = None
    backups: BackupSchedule | None = None

    @property
    def graph(self) -> GraphClient:
        """The Graph API client the engine was built with (one per process)."""
        return self.engine.graph

    def start_background(self) -> None:
        """Start the sink worker and the backup schedule (the scheduler starts with the API)."""
        if self.backups is not None:
            self.backups.start()
            log.info("scheduled backups: %r", self.backups)
        if self.sinks is not None:
            self.sinks.start()

    def close(self) -> None:
        if self.sinks is not None:
            self.sinks.stop()
        if self.backups is not None:
            self.backups.stop()
        self.engine.close()


def build_graph(settings: Settings, clock: Clock | None = None) -> GraphClient:
    if clock is None:
        return GraphClient(settings.graph_url, settings.graph_version)
    return GraphClient(
        settings.graph_url, settings.graph_version, clock=lambda: clock.now().timestamp()
    )


def build_engine(
    settings: Settings,
    store: Store,
    *,
    clock: Clock | None = None,
    events: EventBus | None = None,
    policies: PolicyLayers | None = None,
    owner: str | None = None,
    lease_ttl: float | None = None,
) -> RenewalEngine:
    """A renewal engine for ``store`` resolving policies in layers (settings, tenant, credential)."""
    from .scheduler.policies import PolicyLayers

    clock = clock or store.clock
    layers = policies if policies is not None else PolicyLayers(settings, store)
    return RenewalEngine(
        store,
        build_graph(settings, clock),
        clock=clock,
        owner=owner,
        lease_ttl=lease_ttl if lease_ttl is not None else settings.lease_ttl,
        policy_resolver=layers.for_credential,
        events=events,
    )


def build_runtime(
    settings: Settings,
    store: Store,
    *,
    clock: Clock | None = None,
    owner: str | None = None,
    scheduler: bool = False,
    background: bool = False,
) -> Runtime:
    """Build the parts of a process over an open ``store`` (see the module docstring).

    ``scheduler`` adds a :class:`~permatoken.scheduler.Scheduler` (not started); ``background``
    adds the sink worker and, when ``backup.every`` is set, the backup schedule (started by
    :meth:`Runtime.start_background`). ``owner`` names this replica in every lease.
    """
    from .scheduler.policies import PolicyLayers

    events = EventBus()
    policies = PolicyLayers(settings, store)
    sinks: SinkWorker | None = None
    backups: BackupSchedule | None = None
    clock = clock or store.clock
    engine = build_engine(
        settings,
        store,
        clock=clock,
        events=events,
        policies=policies,
        owner=owner,
        # A scheduler's claim and the rotation working on it share one lease: one expiry.
        lease_ttl=settings.scheduler_lease_ttl if scheduler else settings.lease_ttl,
    )
    if background:
        from .backup.schedule import BackupSchedule
        from .sinks.worker import SinkWorker

        sinks = SinkWorker(settings, store, owner=engine.owner, clock=clock)
        events.subscribe_promotions(sinks.wake)  # a promotion is delivered to sinks at once
        if settings.backup.every is not None:
            backups = BackupSchedule(settings, store, owner=engine.owner, clock=clock)
    sched: Scheduler | None = None
    if scheduler:
        from .scheduler import Scheduler

        sched = Scheduler(settings, store, engine, policies=policies)
    return Runtime(settings, store, events, policies, engine, sched, sinks, backups)
