"""The single-flight path of a failure report, shared by ``POST /v1/reports`` and the Graph proxy.

Concurrent reports of one ``(name, version)`` in this process share one engine call (in an
upstream thread, :mod:`permatoken.server.upstream`); the engine collapses reports across
processes and replicas with its lease. Every report is counted and audited (``token.report``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from ..access import Principal
from ..rotation import Outcome, RotationOutcome
from ..store.audit import AuditRecord
from ..vocabulary import ReportStatus
from .broker import Broker
from .cache import CacheEntry

#: Engine outcome → report status in the API (every outcome has one; a test checks).
REPORT_STATUS: Mapping[Outcome, ReportStatus] = {
    Outcome.ROTATED: ReportStatus.RENEWED,
    Outcome.ALREADY_ROTATED: ReportStatus.NEWER_EXISTS,
    Outcome.NEWER_EXISTS: ReportStatus.NEWER_EXISTS,
    Outcome.STILL_VALID: ReportStatus.STILL_VALID,
    Outcome.NEEDS_HUMAN: ReportStatus.NEEDS_HUMAN,
    Outcome.FAILED: ReportStatus.FAILED,
    Outcome.BUSY: ReportStatus.BUSY,
    # A throttled renewal is retried by the scheduler: the caller should retry shortly too.
    Outcome.DEFERRED: ReportStatus.BUSY,
}
#: Statuses after which the credential has a usable current token.
USABLE = tuple(s for s in ReportStatus if s.usable)


@dataclass(frozen=True)
class Reported:
    status: ReportStatus
    outcome: RotationOutcome
    #: The current token when ``status`` is in :data:`USABLE`, else None.
    entry: CacheEntry | None


async def report_failure(
    b: Broker,
    p: Principal,
    name: str,
    version: int,
    *,
    code: int | None,
    subcode: int | None,
    source: str,
    via: str | None = None,
) -> Reported:
    """Report ``version`` of ``name`` dead (the caller checked the grant and the name)."""
    key = (name, version)
    fut = b.reports.get(key)
    if fut is None:
        fut = asyncio.ensure_future(
            b.upstream.run(
                p,
                name,
                functools.partial(
                    b.engine.report_failure,
                    name,
                    version,
                    code=code,
                    subcode=subcode,
                    actor=p.actor,
                ),
            )
        )
        b.reports[key] = fut

        def done(f: asyncio.Future[RotationOutcome]) -> None:
            if b.reports.get(key) is f:
                del b.reports[key]
            if not f.cancelled():
                f.exception()  # mark retrieved even if every waiter went away

        fut.add_done_callback(done)
    outcome = await asyncio.shield(fut)
    status = REPORT_STATUS.get(outcome.status, ReportStatus.FAILED)
    entry = None
    if status in USABLE:
        entry = await b.cache.get(name)
        if outcome.version is not None and entry.version < outcome.version:
            b.cache.invalidate(name)
            entry = await b.cache.get(name)
    b.metrics.reports.labels(status).inc()
    detail: dict[str, object] = {
        "version": version,
        "code": code,
        "subcode": subcode,
        "now": entry.version if entry is not None else outcome.version,
    }
    if via is not None:
        detail["via"] = via
    b.recorder.add(
        AuditRecord(p.actor, "token.report", status, target=name, source=source, detail=detail)
    )
    return Reported(status, outcome, entry)


__all__ = ["REPORT_STATUS", "USABLE", "Reported", "report_failure"]
