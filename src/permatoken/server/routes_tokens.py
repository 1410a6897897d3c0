"""What applications call at run time: read a token, wait, stream rotations, report a failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import assert_never

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .._exceptions import NotFoundError
from ..access import Action
from ..models import validate_name
from ..rotation import RotationOutcome
from ..store.audit import AuditRecord
from ..timeutil import isoformat
from ..vocabulary import ReportStatus
from .broker import Broker
from .cache import CacheEntry
from .errors import ApiError
from .openapi import INT_QUERY, NAME, Op, Param
from .params import broker_of, int_param, only_params
from .reports import REPORT_STATUS, report_failure
from .schemas import ReportIn, ReportOut, TokenOut
from .sessions import Session, first, rotation_events

_NO_STORE = "no-store"


def _etag_version(header: str | None) -> int | None:
    if not header:
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')
    return int(tag[1:]) if tag.startswith("v") and tag[1:].isdigit() else None


def _token_response(entry: CacheEntry) -> Response:
    return Response(
        entry.body,
        media_type="application/json",
        headers={"ETag": entry.etag, "Cache-Control": _NO_STORE},
    )


def _not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": _NO_STORE})


async def get_token(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.READ_TOKEN)
    # The grammar first: a decoded path such as acme/../globex/wa never meets a grant pattern.
    name = validate_name(request.path_params["name"])
    b.check(request, p, Action.READ_TOKEN, name)
    only_params(request, "after_version", "wait")
    after = int_param(request, "after_version", lo=0, hi=2**31 - 1)
    wait = int_param(request, "wait", lo=0, hi=b.config.max_wait, number=float)
    inm = request.headers.get("if-none-match")
    if after is None:
        after = _etag_version(inm)
    try:
        entry = await b.cache.get(name)
    except NotFoundError:
        b.metrics.token_reads.labels("not_found").inc()
        raise
    if after is not None and entry.version <= after and wait:
        with b.open_session(p) as session:
            entry = await _wait_for_change(b, session, name, int(after), float(wait)) or entry
            session.check()  # revoked or expired while waiting: nothing more for this key
    if (after is not None and entry.version <= after) or (
        inm is not None and inm.strip() == entry.etag
    ):
        b.metrics.reads_not_modified.inc()
        return _not_modified(entry.etag)
    b.recorder.add_read(p.actor, name, b.client(request), entry.version)
    b.metrics.reads_ok.inc()
    return _token_response(entry)


async def _wait_for_change(
    b: Broker, session: Session, name: str, after: int, wait: float
) -> CacheEntry | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    b.metrics.waiters.inc()
    try:
        while True:
            fut = b.hub.watch(name)  # registered before the check: no promotion slips between
            try:
                entry = await b.cache.get(name)
                remaining = deadline - loop.time()
                if entry.version > after or remaining <= 0 or b.closing:
                    return entry
                await first(session, fut, remaining)
            finally:
                b.hub.unwatch(name, fut)
    finally:
        b.metrics.waiters.dec()


async def stream(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.READ_TOKEN)
    only_params(request, "names")
    raw = request.query_params.get("names")
    names: frozenset[str] | None = None
    if raw:
        names = frozenset(validate_name(n.strip()) for n in raw.split(",")[:500] if n.strip())
        for n in names:
            b.check(request, p, Action.READ_TOKEN, n)

    def accepts(name: str) -> bool:
        return (names is None or name in names) and p.sees(name)

    sub = b.hub.subscribe(accepts)
    b.recorder.add(
        AuditRecord(
            p.actor,
            "stream.opened",
            "ok",
            source=b.client(request),
            detail={"names": sorted(names or ())[:20]},
        )
    )
    keepalive = b.config.keepalive

    def ended(exc: ApiError) -> str:
        # The key was revoked or expired: say so and close (clients stop retrying).
        return f"event: error\ndata: {json.dumps({'code': exc.code, 'message': exc.message})}\n\n"

    async def events() -> AsyncIterator[str]:
        b.metrics.waiters.inc()
        try:
            with b.open_session(p) as session:
                stream = rotation_events(
                    session, sub.queue, keepalive=keepalive, closing=lambda: b.closing, ended=ended
                )
                async for event in stream:
                    yield event
        finally:
            b.hub.unsubscribe(sub)
            b.metrics.waiters.dec()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": _NO_STORE, "X-Accel-Buffering": "no"},
    )


async def report(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.REPORT)
    only_params(request)
    body = await b.body(request, ReportIn)
    b.check(request, p, Action.REPORT, body.name)
    validate_name(body.name)
    if (body.name, body.version) not in b.reports:
        # 404 now (the engine would wait for a lease).
        await run_in_threadpool(b.store.get, body.name)
    r = await report_failure(
        b,
        p,
        body.name,
        body.version,
        code=body.code,
        subcode=body.subcode,
        source=b.client(request),
    )
    outcome = r.outcome
    out: dict[str, object] = {
        "status": r.status,
        "version": outcome.version,
        "expires_at": isoformat(outcome.expires_at),
        "message": outcome.message or _default_message(r.status, outcome),
    }
    if r.entry is not None:
        out["version"], out["expires_at"] = r.entry.version, isoformat(r.entry.expires_at)
        if p.may(Action.READ_TOKEN, body.name):
            out["token"] = r.entry.token.reveal()
    return JSONResponse(out, headers={"Cache-Control": _NO_STORE})


def _default_message(status: ReportStatus, outcome: RotationOutcome) -> str:
    match status:
        case ReportStatus.RENEWED:
            return f"renewed: now at version {outcome.version}"
        case ReportStatus.NEWER_EXISTS:
            return f"a newer version ({outcome.version}) already exists"
        case ReportStatus.STILL_VALID:
            return "Meta says the token is still valid"
        case ReportStatus.NEEDS_HUMAN:
            return "a human must supply a new token"
        case ReportStatus.FAILED:
            return "the renewal failed; the scheduler retries"
        case ReportStatus.BUSY:
            return "another worker is renewing this credential; retry shortly"
    assert_never(status)


OPERATIONS: list[Op] = [
    # The hot path first: Starlette tries routes in order.
    Op(
        "get",
        "/v1/tokens/{name}",
        "/v1/tokens/{name:path}",
        get_token,
        "Current token of a credential (app with a matching grant, admin). "
        "Long-poll with after_version + wait.",
        TokenOut,
        params=(
            NAME,
            Param("after_version", "query", INT_QUERY, "Answer only once the version is greater."),
            Param(
                "wait",
                "query",
                {"type": "number", "minimum": 0, "maximum": 60},
                "Seconds to wait (≤ 60).",
            ),
            Param(
                "If-None-Match",
                "header",
                {"type": "string"},
                'e.g. "v3": 304 if still current.',
            ),
        ),
        extra_responses={"304": "Not modified: the version is still the one given."},
    ),
    Op(
        "get",
        "/v1/stream",
        "/v1/stream",
        stream,
        "Server-Sent Events: `event: rotation` for every promotion the key may read.",
        None,
        params=(
            Param(
                "names",
                "query",
                {"type": "string", "minLength": 1},
                "Comma-separated names to follow.",
            ),
        ),
        media="text/event-stream",
    ),
    Op(
        "post",
        "/v1/reports",
        "/v1/reports",
        report,
        "Report that a token version failed (e.g. Graph error 190).",
        ReportOut,
        body=ReportIn,
    ),
]


__all__ = ["OPERATIONS", "REPORT_STATUS", "get_token", "report", "stream"]
