"""Deliveries to sinks inside ``permatoken serve``: a reconciler, not a queue.

A sink is behind while the version it holds differs from its credential's current version
(:class:`~permatoken.store.sinks.SinkTable`). The worker looks for sinks behind every
``sinks.interval`` seconds, and at once when a promotion in this process wakes it
(:meth:`SinkWorker.wake`, subscribed to the renewal engine's promotions). So a promotion never
waits for a sink (rotation finishes first, delivery follows), and a delivery lost to a crash, an
outage or a replica that died is found again by the same comparison: nothing to lose.

Each due sink is claimed (a lease, one replica delivers), gets the credential's current value,
and either records the version delivered or the error, with the next attempt after a capped
exponential back-off with jitter (:func:`backoff`). A sink still behind ``sinks.notice_after``
seconds after the promotion gets one ``sink_behind`` notice per (sink, version).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .._exceptions import AlreadyExistsError, NotFoundError, PermatokenError
from ..notify import notices as nt
from ..notify.delivery import Outbox, channels_for
from ..settings import Settings
from ..store.repository import Store
from ..store.sinks import SinkRecord, SinkTable
from ..timeutil import Clock
from .base import Delivery, Sink, open_sink, parse_sink_url

log = logging.getLogger(__name__)


def backoff(
    attempts: int, *, first: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before the next attempt after ``attempts`` failures in a row (pure): ``first``
    doubling per failure, at most ``cap``, with up to 20 % jitter so replicas spread out."""
    base = min(cap, first * 2.0 ** max(0, attempts - 1))
    return base * (0.8 + 0.2 * rand())


def current_delivery(store: Store, name: str, uid: str, version: int | None = None) -> Delivery:
    """The delivery of ``name``'s current version (or ``version``) to the sink ``uid``."""
    v = store.version(name, version)
    token = store.reveal(name, v.version)
    return Delivery(
        sink_uid=uid,
        credential_id=store.get(name).id,
        name=name,
        version=v.version,
        token=token,
        expires_at=v.meta.expires_at,
        token_type=v.meta.token_type,
    )


def add_sink(store: Store, name: str, url: str, *, actor: str) -> SinkRecord:
    """``sink add``: deliver the current value now, and record the sink only if that worked
    (a refusal changes nothing in the store)."""
    spec = parse_sink_url(url)
    store.get(name)  # an unknown credential is refused before any destination is touched
    if SinkTable(store).get(name, spec.url) is not None:
        raise AlreadyExistsError(
            f"{name!r} already has the sink {spec.url}",
            hint=f"`permatoken sink list {name}` shows its sinks",
            name=name,
        )
    try:
        store.version(name)
    except NotFoundError as exc:
        raise NotFoundError(
            f"{name!r} has no current version to deliver",
            hint=f"give it one first: `permatoken rotate {name} --token-file FILE`",
            name=name,
        ) from exc
    uid = uuid.uuid4().hex
    delivery = current_delivery(store, name, uid)
    open_sink(spec).deliver(delivery)
    return SinkTable(store).add(
        name, spec.url, spec.options, uid=uid, delivered_version=delivery.version, actor=actor
    )


class SinkWorker:
    """Delivers to every sink behind (see the module docstring); one thread per ``serve``."""

    def __init__(self, settings: Settings, store: Store, *, owner: str, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.owner = owner
        self.clock = clock
        self.table = SinkTable(store)
        self._sinks: dict[str, Sink] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SinkWorker(owner={self.owner!r}, every={self.settings.sinks.interval:g}s)"

    def wake(self, *_: Any) -> None:
        """Look for sinks behind now (a promotion listener: ``(name, version)``)."""
        self._wake.set()

    def _sink(self, url: str) -> Sink:
        sink = self._sinks.get(url)
        if sink is None:
            sink = self._sinks[url] = open_sink(parse_sink_url(url))
        return sink

    def run_once(self) -> int:
        """Attempt every due delivery once; how many were delivered."""
        cfg = self.settings.sinks
        now = self.clock.now()
        done = 0
        for rec in self.table.due(now):
            if self._stop.is_set():
                break
            if not self.table.claim(rec, now, cfg.lease):
                continue
            version = rec.current_version
            assert version is not None
            try:
                delivery = current_delivery(self.store, rec.name, rec.uid, version)
                self._sink(rec.url).deliver(delivery)
            except Exception as exc:  # any failure is this sink's, retried later
                if isinstance(exc, PermatokenError):
                    reason = exc.message
                else:  # not ours to describe: its type only (its text might quote a value)
                    log.error(
                        "sink %s of %s failed unexpectedly", rec.url, rec.name, exc_info=False
                    )
                    reason = f"unexpected {type(exc).__name__}"
                wait = backoff(rec.attempts + 1, first=cfg.retry_min, cap=cfg.retry_max)
                after = self.clock.now()
                self.table.failed(rec, reason, after + timedelta(seconds=wait), version)
                log.warning(
                    "sink %s of %s: version %d not delivered (%s); next attempt in %.0f s",
                    rec.url,
                    rec.name,
                    version,
                    reason,
                    wait,
                )
                self._maybe_notify(rec, reason, after)
                continue
            self.table.delivered(rec, version, self.clock.now())
            done += 1
        return done

    def _maybe_notify(self, rec: SinkRecord, error: str, now: Any) -> None:
        cfg = self.settings.sinks
        behind = rec.lag_seconds(now)
        if behind < cfg.notice_after or rec.current_version is None:
            return
        if nt.NoticeEvent.SINK_BEHIND.value not in self.settings.notify_events:
            return
        tenant = rec.name.split("/")[0]
        notice = nt.sink_behind(
            rec.name,
            tenant,
            rec.current_version,
            url=rec.url,
            uid=rec.uid,
            error=error,
            behind=behind,
        )
        try:
            options = self.store.get(rec.name).options
            if Outbox(self.store, owner=self.owner, clock=self.clock).enqueue(
                notice, channels_for(self.settings, tenant, dict(options))
            ):
                log.warning("sink %s of %s is behind: notice sent", rec.url, rec.name)
        except PermatokenError as exc:
            log.error("could not record the sink-behind notice: %s", exc.message)

    # --- thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except PermatokenError as exc:  # the store is unreachable: try again later
                log.warning("sink deliveries paused: %s", exc.message)
            except Exception:
                log.exception("sink worker crashed; trying again")
            self._wake.wait(self.settings.sinks.interval)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="permatoken-sinks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def start_sink_worker(settings: Settings, store: Store, *, owner: str, clock: Clock) -> SinkWorker:
    """The hook ``serve`` calls: a running worker (it idles cheaply when there are no sinks)."""
    worker = SinkWorker(settings, store, owner=owner, clock=clock)
    worker.start()
    return worker


__all__ = ["SinkWorker", "add_sink", "backoff", "current_delivery", "start_sink_worker"]
