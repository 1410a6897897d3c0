"""The single-flight path of a failure report, shared by ``POST /v1/reports`` and the Graph proxy.

Concurrent reports of one ``(name, version)`` in this process share one engine call (in an
upstream thread, :mod:`permatoken.server.upstream`); the engine collapses reports across
processes and replicas with its lease. Every report is counted and audited (``token.report``).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from ..access import Principal
from ..rotation import RotationOutcome
from ..store.audit import AuditRecord
from .broker import Broker
from .cache import CacheEntry

#: Engine outcome → report status in the API.
REPORT_STATUS = {
    "rotated": "renewed",
    "already_rotated": "newer_exists",
    "newer_exists": "newer_exists",
    "still_valid": "still_valid",
    "needs_human": "needs_human",
    "failed": "failed",
    "busy": "busy",
    "deferred": "busy",
}
#: Statuses after which the credential has a usable current token.
USABLE = ("renewed", "newer_exists", "still_valid")


@dataclass(frozen=True)
class Reported:
    status: str
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
    status = REPORT_STATUS.get(outcome.status, "failed")
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
