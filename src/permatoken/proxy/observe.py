"""What the proxy counts and records: outcome classes, Prometheus metrics, aggregated audit.

Every request ends in one :class:`Outcome` (a closed set: the only label value of
``permatoken_proxy_requests_total``). Metrics live in the broker's registry and name nothing (no
credential, phone number, path or key), so every /metrics view shows them:

- ``permatoken_proxy_requests_total{outcome}``
- ``permatoken_proxy_recoveries_total{result}``: dead tokens met (``replayed``: sent again with
  the next version; ``not_replayable``: a streamed body, the 190 passed through after the
  report; ``failed``: no newer version came, after Meta's 190 or before sending a token whose
  stored health is dead)
- ``permatoken_proxy_upstream_seconds``: time to Meta's answer headers (histogram)
- ``permatoken_proxy_queue_depth``: sends waiting for their pacing turn

Authenticated requests are audited like token reads: one ``graph.request`` record per key,
credential, address, token version and outcome per aggregation window, with a count.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..meta.errors import ErrorKind


class Outcome(enum.StrEnum):
    OK = "ok"  # Meta answered < 400
    RECOVERED = "recovered"  # a dead token, replaced, and the request sent again
    TOKEN_DEAD = "token_dead"  # noqa: S105 - Meta's 190 passed through, or refused as dead
    THROTTLED = "throttled"  # Meta's throttling / pair-limit answer passed through
    GRAPH_ERROR = "graph_error"  # any other Meta error passed through
    REFUSED = "refused"  # the proxy refused the request (key, grant, path, size)
    PACED = "paced"  # the pacing queue was full: answered as a 130429
    UPSTREAM_ERROR = "upstream_error"  # Meta unreachable, or its answer lost
    ABANDONED = "abandoned"  # the client hung up before the request was sent
    ERROR = "error"  # a fault of the proxy's own (logged)


class Recovery(enum.StrEnum):
    REPLAYED = "replayed"
    NOT_REPLAYABLE = "not_replayable"
    FAILED = "failed"


def outcome_of(status: int, kind: ErrorKind | None) -> Outcome:
    """The class of an answer of Meta's passed through as it is."""
    if status < 400:
        return Outcome.OK
    if kind is ErrorKind.TOKEN_DEAD:
        return Outcome.TOKEN_DEAD
    if kind in (ErrorKind.THROTTLED, ErrorKind.PAIR_RATE_LIMITED):
        return Outcome.THROTTLED
    return Outcome.GRAPH_ERROR


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry, queue_depth: Callable[[], float]) -> None:
        self.requests = Counter(
            "permatoken_proxy_requests_total",
            "Graph proxy requests by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.recoveries = Counter(
            "permatoken_proxy_recoveries_total",
            "Dead tokens met by the Graph proxy, by what followed.",
            ["result"],
            registry=registry,
        )
        self.upstream = Histogram(
            "permatoken_proxy_upstream_seconds",
            "Time from sending a request to Meta to its answer's headers.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.queue = Gauge(
            "permatoken_proxy_queue_depth",
            "Sends waiting for their pacing turn.",
            registry=registry,
        )
        self.queue.set_function(queue_depth)
        self._outcomes = {o: self.requests.labels(o.value) for o in Outcome}
        self._recoveries = {r: self.recoveries.labels(r.value) for r in Recovery}

    def count(self, outcome: Outcome) -> None:
        self._outcomes[outcome].inc()

    def recovered(self, result: Recovery) -> None:
        self._recoveries[result].inc()


__all__ = ["Outcome", "ProxyMetrics", "Recovery", "outcome_of"]
