"""Prometheus metrics, in a registry of the app's own (never the global one).

Cardinality: per-credential series (``permatoken_credential_expiry_timestamp_seconds`` and
``permatoken_credential_health``, labels ``name`` and ``tenant``) exist once per credential and
only while there are at most ``per_credential_limit`` credentials (default 10,000); above that
only the per-health totals are exported. Every other label has a fixed, small set of values.
Credential names are validated identifiers, never secrets.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..backup.status import LastBackupCollector
from ..models import Health
from ..store import Store
from ..store.schema import credentials, versions

_LABEL = re.compile(r"[a-z0-9_-]{1,24}")
RENEWAL_RESULTS = ("rotated", "failed", "needs_human", "deferred")


def _bounded(value: Any, default: str = "other") -> str:
    text = str(value).lower() if value is not None else default
    return text if _LABEL.fullmatch(text) else default


class CredentialCollector(Collector):
    """Reads credential expiry and health at scrape time (cached for ``max_age`` seconds)."""

    def __init__(
        self, store: Store, *, per_credential_limit: int = 10_000, max_age: float = 15.0
    ) -> None:
        self.store = store
        self.limit = per_credential_limit
        self.max_age = max_age
        self._snapshot: list[tuple[str, str, str, float | None]] | None = None
        self._total = 0
        self._counts: dict[str, int] = {}
        self._at = 0.0
        self._lock = threading.Lock()

    def _read(self) -> tuple[int, list[tuple[str, str, str, float | None]], dict[str, int]]:
        with self.store.read() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(credentials.c.health, sa.func.count()).group_by(credentials.c.health)
                ).all()
            )
            total = sum(counts.values())
            rows: list[tuple[str, str, str, float | None]] = []
            if total <= self.limit:
                q = sa.select(
                    credentials.c.name,
                    credentials.c.tenant,
                    credentials.c.health,
                    versions.c.expires_at,
                ).select_from(
                    credentials.outerjoin(
                        versions,
                        sa.and_(
                            versions.c.credential_id == credentials.c.id,
                            versions.c.state == "current",
                        ),
                    )
                )
                for name, tenant, health, exp in conn.execute(q):
                    rows.append(
                        (name, tenant, health, exp.timestamp() if exp is not None else None)
                    )
        return total, rows, counts

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Names only: registering must not read (and cache) the database."""
        yield GaugeMetricFamily(
            "permatoken_credentials", "Credentials by health.", labels=["health"]
        )
        yield GaugeMetricFamily(
            "permatoken_credential_expiry_timestamp_seconds", "", labels=["name", "tenant"]
        )
        yield GaugeMetricFamily(
            "permatoken_credential_health", "", labels=["name", "tenant", "health"]
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._at > self.max_age:
                self._total, self._snapshot, self._counts = self._read()
                self._at = time.monotonic()
            rows, counts = self._snapshot, self._counts
        by_health = GaugeMetricFamily(
            "permatoken_credentials", "Credentials by health.", labels=["health"]
        )
        for h in Health:
            by_health.add_metric([h.value], counts.get(h.value, 0))
        yield by_health
        expiry = GaugeMetricFamily(
            "permatoken_credential_expiry_timestamp_seconds",
            "Expiry of the current token (absent for never-expiring tokens).",
            labels=["name", "tenant"],
        )
        health = GaugeMetricFamily(
            "permatoken_credential_health",
            "1 for the credential's current health.",
            labels=["name", "tenant", "health"],
        )
        for name, tenant, state, exp in rows:
            if exp is not None:
                expiry.add_metric([name, tenant], exp)
            health.add_metric([name, tenant, state], 1)
        yield expiry
        yield health


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
        r.register(CredentialCollector(store, per_credential_limit=per_credential_limit))
        r.register(LastBackupCollector(store))

    def on_engine_event(self, kind: str, name: str, detail: dict[str, Any]) -> None:
        if kind == "rotation.completed":
            self.renewals.labels("rotated").inc()
        elif kind == "rotation.failed":
            self.renewals.labels("needs_human" if detail.get("needs_human") else "failed").inc()
        elif kind.startswith("notice."):
            result = detail.get("result") or (
                "ok" if kind in ("notice.sent", "notice.delivered") else kind.split(".", 1)[1]
            )
            self.notices.labels(_bounded(detail.get("channel")), _bounded(result)).inc()

    def render(self) -> bytes:
        if self._scheduler_lag is not None:
            lag = self._scheduler_lag()
            if lag is not None:
                self.lag.set(lag)
        return generate_latest(self.registry)


__all__ = ["BrokerMetrics", "CredentialCollector"]
