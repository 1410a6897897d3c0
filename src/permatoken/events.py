"""Events: the closed set of their kinds, the value a listener receives, and the bus that carries them.

Two streams use the same names:

- the renewal engine's events (``rotation.*``, ``inspected``, ``failure.reported``,
  ``version.revoked``) go to in-process listeners through an :class:`EventBus`: the scheduler
  turns them into notices (:mod:`permatoken.scheduler.reactions`), the HTTP server into metrics;
- the notice deliverer's ``notice.*`` (one per delivery attempt) take the same bus to the
  HTTP server's metrics;
- the store's event log (the ``events`` table: ``credential.created``, ``version.promoted``, …)
  keeps a row per change, read through ``GET /v1/events`` and the dashboard.

``tests/test_events.py`` proves the lists agree: every kind emitted in the source is a member of
:class:`EventKind`, and every member is emitted somewhere.

Listeners run on the emitting thread (an engine worker, a scheduler tick, a request's thread
pool), one after the other; one that raises is logged and the others still run, so a listener
never breaks a rotation. Subscribing and unsubscribing are safe from any thread: an event being
delivered goes to the listeners subscribed when it was emitted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

log = logging.getLogger("permatoken.rotation")

__all__ = [
    "EngineEvent",
    "EventBus",
    "EventKind",
    "EventListener",
    "PromotionListener",
    "Unsubscribe",
]


class EventKind(StrEnum):
    """Every kind of event, engine and event log alike (a ``str``: stored and compared as text)."""

    # --- the renewal engine -------------------------------------------------------------------
    ROTATION_STARTED = "rotation.started"
    ROTATION_COMPLETED = "rotation.completed"
    ROTATION_FAILED = "rotation.failed"
    #: A throttle: a delay, not a failure (never counted as one, never a notice).
    ROTATION_DEFERRED = "rotation.deferred"
    INSPECTED = "inspected"
    FAILURE_REPORTED = "failure.reported"
    VERSION_REVOKED = "version.revoked"  # also in the event log

    # --- notices (the deliverer, in the scheduler's process) ---------------------------------
    NOTICE_DELIVERED = "notice.delivered"
    #: An attempt that failed; ``detail["final"]`` says whether it was the last one.
    NOTICE_FAILED = "notice.failed"
    #: Dropped unsent: its channel is no longer configured.
    NOTICE_DROPPED = "notice.dropped"

    # --- the store's event log ----------------------------------------------------------------
    APP_ADDED = "app.added"
    APP_UPDATED = "app.updated"
    #: The same word in the event log and the audit log (the event log said ``credential.added``
    #: before migration 0009_event_names renamed its rows).
    CREDENTIAL_CREATED = "credential.created"
    CREDENTIAL_REMOVED = "credential.removed"
    HEALTH_CHANGED = "health.changed"
    VERSION_PENDING = "version.pending"
    VERSION_PROMOTED = "version.promoted"
    VERSION_RETIRED = "version.retired"
    KEYS_REWRAPPED = "keys.rewrapped"
    POLICY_TENANT_SET = "policy.tenant_set"
    SINK_ADDED = "sink.added"
    SINK_REMOVED = "sink.removed"
    SINK_DELIVERED = "sink.delivered"
    SINK_FAILED = "sink.failed"
    BACKUP_RESTORED = "backup.restored"


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One event of the renewal engine: its kind, the credential it is about, non-secret detail."""

    kind: EventKind
    name: str
    detail: Mapping[str, Any]


EventListener = Callable[[EngineEvent], None]
#: Called with ``(name, version)`` after every promotion made in this process.
PromotionListener = Callable[[str, int], None]
Unsubscribe = Callable[[], None]
_L = TypeVar("_L")


class EventBus:
    """The engine's listeners, built before the engine and passed to it (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Replaced, never mutated: an event in flight keeps the snapshot it started with.
        self._listeners: tuple[EventListener, ...] = ()
        self._promotion_listeners: tuple[PromotionListener, ...] = ()

    def __repr__(self) -> str:
        return (
            f"EventBus(listeners={len(self._listeners)}, "
            f"promotion_listeners={len(self._promotion_listeners)})"
        )

    def subscribe(self, listener: EventListener) -> Unsubscribe:
        """Call ``listener`` with every event from now on; returns the way to stop (idempotent)."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = _without(self._listeners, listener)

        return unsubscribe

    def subscribe_promotions(self, listener: PromotionListener) -> Unsubscribe:
        """Call ``listener(name, version)`` after every promotion; returns the way to stop."""
        with self._lock:
            self._promotion_listeners = (*self._promotion_listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._promotion_listeners = _without(self._promotion_listeners, listener)

        return unsubscribe

    def emit(self, event: EngineEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed for %s", event.name)

    def promoted(self, name: str, version: int) -> None:
        for listener in self._promotion_listeners:
            try:
                listener(name, version)
            except Exception:  # a subscriber must never break a rotation
                log.exception("promotion listener failed for %s", name)


def _without(listeners: tuple[_L, ...], listener: _L) -> tuple[_L, ...]:
    """``listeners`` less the first ``listener`` (as ``list.remove``; nothing if absent)."""
    for i, found in enumerate(listeners):
        if found == listener:
            return listeners[:i] + listeners[i + 1 :]
    return listeners
