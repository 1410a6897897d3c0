"""Prometheus metrics, in a registry of the app's own (never the global one).

Cardinality: per-credential series (``permatoken_credential_expiry_timestamp_seconds`` and
``permatoken_credential_health``, labels ``name`` and ``tenant``) exist once per credential and
only while there are at most ``per_credential_limit`` credentials (default 10,000); above that
only the per-health totals are exported. Every other label has a fixed, small set of values.
Credential names are validated identifiers, never secrets.

Who sees what (:class:`View`): a key without grant limits sees every series; a grant-limited key
sees the per-credential series and the per-health totals of the credentials its grants cover
only; a scrape without a key (``--metrics-public``) sees the totals and no name at all, unless the
operator opted in with ``metrics_public_names``. Process-wide counters (reads, reports,
renewals, refused keys, waiters, lag) are aggregates and name nothing: everyone sees them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..backup.metric import LastBackupCollector
from ..events import EngineEvent, EventKind
from ..models import Health
from ..sinks.metrics import SinkLagCollector
from ..store import Store, fleet

RENEWAL_RESULTS = ("rotated", "failed", "needs_human", "deferred")


Row = tuple[str, str, str, float | None]
#: The families that name credentials: filtered by grants, absent from public scrapes.
PER_CREDENTIAL = (
    "permatoken_credential_expiry_timestamp_seconds",
    "permatoken_credential_health",
)
CREDENTIAL_FAMILIES = ("permatoken_credentials", *PER_CREDENTIAL)


@dataclass(frozen=True)
class Snapshot:
    counts: dict[str, int]
    #: None when there are too many credentials for per-credential series.
    rows: list[Row] | None
    at: float


@dataclass(frozen=True)
class View:
    """What one scrape may see: every credential, those a key's grants cover, or no names."""

    names: bool = True
    sees: Callable[[str], bool] | None = None
    #: The grants behind ``sees``: the cache key, and (their literal prefixes) an SQL pre-filter.
    grants: tuple[str, ...] = ()


EVERYTHING = View()
AGGREGATE = View(names=False)


def literal_prefix(grant: str) -> str:
    """The part of a grant before its first wildcard (``acme/`` for ``acme/*``)."""
    cut = min((i for i, c in enumerate(grant) if c in "*?["), default=len(grant))
    return grant[:cut]


class CredentialCollector(Collector):
    """Reads credential expiry and health at scrape time (cached for ``max_age`` seconds)."""

    def __init__(
        self, store: Store, *, per_credential_limit: int = 10_000, max_age: float = 15.0
    ) -> None:
        self.store = store
        self.limit = per_credential_limit
        self.max_age = max_age
        self._snapshots: dict[tuple[str, ...] | None, Snapshot] = {}
        self._lock = threading.Lock()

    def _read(self, view: View) -> Snapshot:
        with self.store.read() as conn:
            if view.sees is None:
                counts = fleet.health_counts(conn)
                rows = fleet.expiry_rows(conn, None) if sum(counts.values()) <= self.limit else None
                return Snapshot(counts, rows, time.monotonic())
            # A grant-limited key: count only what it may see (its rows, pre-filtered in SQL).
            prefixes = tuple(literal_prefix(g) for g in view.grants)
            visible = [r for r in fleet.expiry_rows(conn, prefixes) if view.sees(r[0])]
        counts = {}
        for row in visible:
            counts[row[2]] = counts.get(row[2], 0) + 1
        return Snapshot(counts, visible if len(visible) <= self.limit else None, time.monotonic())

    def snapshot(self, view: View) -> Snapshot:
        key = None if view.sees is None else view.grants
        with self._lock:
            snap = self._snapshots.get(key)
            if snap is None or time.monotonic() - snap.at > self.max_age:
                if len(self._snapshots) > 256:
                    self._snapshots.clear()
                snap = self._snapshots[key] = self._read(view)
        return snap

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Names only: registering must not read (and cache) the database."""
        yield GaugeMetricFamily(
            "permatoken_credentials", "Credentials by health.", labels=["health"]
        )
        yield GaugeMetricFamily(PER_CREDENTIAL[0], "", labels=["name", "tenant"])
        yield GaugeMetricFamily(PER_CREDENTIAL[1], "", labels=["name", "tenant", "health"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self.families(EVERYTHING)

    def families(self, view: View) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot(view)
        by_health = GaugeMetricFamily(
            "permatoken_credentials", "Credentials by health.", labels=["health"]
        )
        for h in Health:
            by_health.add_metric([h.value], snap.counts.get(h.value, 0))
        yield by_health
        if not view.names:
            return
        expiry = GaugeMetricFamily(
            PER_CREDENTIAL[0],
            "Expiry of the current token (absent for never-expiring tokens).",
            labels=["name", "tenant"],
        )
        health = GaugeMetricFamily(
            PER_CREDENTIAL[1],
            "1 for the credential's current health.",
            labels=["name", "tenant", "health"],
        )
        for name, tenant, state, exp in snap.rows or ():
            if exp is not None:
                expiry.add_metric([name, tenant], exp)
            health.add_metric([name, tenant, state], 1)
        yield expiry
        yield health


class _Scrape:
    """The registry as one view sees it (``generate_latest`` only needs ``collect``)."""

    def __init__(self, registry: CollectorRegistry, credentials: CredentialCollector, view: View):
        self.registry, self.credentials, self.view = registry, credentials, view

    def collect(self) -> Iterator[Any]:
        for family in self.registry.collect():
            if family.name not in CREDENTIAL_FAMILIES:
                yield family
        yield from self.credentials.families(self.view)


class BrokerMetrics:
    def __init__(
        self,
        store: Store,
        *,
        per_credential_limit: int = 10_000,
        scheduler_lag: Callable[[], float | None] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.token_reads = Counter(
            "permatoken_token_reads_total", "Token reads by result.", ["result"], registry=r
        )
        self.reports = Counter(
            "permatoken_failure_reports_total",
            "Failure reports by outcome.",
            ["status"],
            registry=r,
        )
        self.renewals = Counter(
            "permatoken_renewals_total", "Renewals by result.", ["result"], registry=r
        )
        self.notices = Counter(
            "permatoken_notice_deliveries_total",
            "Notices by channel and result.",
            ["channel", "result"],
            registry=r,
        )
        self.auth_failures = Counter(
            "permatoken_auth_failures_total", "Refused API keys by reason.", ["reason"], registry=r
        )
        self.promotions_seen = Counter(
            "permatoken_promotions_announced_total", "Promotions announced to waiters.", registry=r
        )
        self.waiters = Gauge(
            "permatoken_waiters", "Long-poll requests and streams waiting.", registry=r
        )
        self.lag = Gauge(
            "permatoken_scheduler_lag_seconds",
            "How far the scheduler is behind its due work.",
            registry=r,
        )
        self.audit_backlog = Gauge(
            "permatoken_audit_backlog", "Audit records buffered, not yet written.", registry=r
        )
        for res in ("ok", "not_modified", "denied", "not_found"):
            self.token_reads.labels(res)
        self.reads_ok = self.token_reads.labels("ok")
        self.reads_not_modified = self.token_reads.labels("not_modified")
        for res in RENEWAL_RESULTS:
            self.renewals.labels(res)
        self._scheduler_lag = scheduler_lag
        self.credentials = CredentialCollector(store, per_credential_limit=per_credential_limit)
        r.register(self.credentials)
        r.register(LastBackupCollector(store))  # names nothing: in every view
        r.register(SinkLagCollector(store))  # per sink kind only: in every view

    def on_engine_event(self, event: EngineEvent) -> None:
        """An engine listener (subscribed while the app runs): counts renewals and notice deliveries by result."""
        match event.kind:
            case EventKind.ROTATION_COMPLETED:
                self.renewals.labels("rotated").inc()
            case EventKind.ROTATION_FAILED:
                result = "needs_human" if event.detail.get("needs_human") else "failed"
                self.renewals.labels(result).inc()
            case EventKind.NOTICE_DELIVERED:
                self.notices.labels(event.detail.get("channel", "unknown"), "ok").inc()
            case EventKind.NOTICE_FAILED:
                result = "failed" if event.detail.get("final") else "retry"
                self.notices.labels(event.detail.get("channel", "unknown"), result).inc()
            case EventKind.NOTICE_DROPPED:
                self.notices.labels(event.detail.get("channel", "unknown"), "dropped").inc()

    def render(self, view: View = EVERYTHING) -> bytes:
        if self._scheduler_lag is not None:
            lag = self._scheduler_lag()
            if lag is not None:
                self.lag.set(lag)
        if view is EVERYTHING:
            return generate_latest(self.registry)
        return generate_latest(_Scrape(self.registry, self.credentials, view))


__all__ = [
    "AGGREGATE",
    "EVERYTHING",
    "BrokerMetrics",
    "CredentialCollector",
    "View",
    "literal_prefix",
]
