"""What happened: credential events and the audit log, filtered by the caller's grants."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..access import Action
from ..models import Event, validate_name
from .openapi import LIMIT, VIEW_ROLES, Op, Param
from .params import broker_of, int_param, only_params, str_param
from .schemas import AuditListOut, AuditOut, EventListOut, EventOut


def event_out(e: Event) -> EventOut:
    return EventOut(
        id=e.id,
        name=e.credential_name,
        kind=e.kind,
        at=e.at,
        actor=e.actor,
        detail=e.detail,
    )


async def list_events(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request, "name", "limit")
    name = str_param(request, "name", 200)
    if name is not None:
        validate_name(name)
        b.check(request, p, Action.VIEW, name)
    limit = int(int_param(request, "limit", lo=1, hi=1000) or 100)
    evs = await run_in_threadpool(
        lambda: b.store.events(name, limit=limit if not p.grants else 1000)
    )
    items = [
        event_out(e)
        for e in evs
        if not p.grants or (e.credential_name and p.sees(e.credential_name))
    ]
    return JSONResponse(EventListOut(items=items[:limit]).model_dump(mode="json"))


async def list_audit(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request, "limit", "before", "action", "target")
    limit = int(int_param(request, "limit", lo=1, hi=1000) or 100)
    before = int_param(request, "before", lo=1, hi=2**62)
    action = str_param(request, "action", 60)
    target = str_param(request, "target", 200)
    if target is not None:
        validate_name(target)
        b.check(request, p, Action.VIEW, target)
    await b.recorder.flush()
    recs = await run_in_threadpool(
        lambda: b.audit.list(
            limit=limit if not p.grants else 1000,
            before=int(before) if before else None,
            action=action[:60] if action else None,
            target=target,
        )
    )
    items = [
        AuditOut.model_validate(r.to_json())
        for r in recs
        if not p.grants or (r.target and p.sees(r.target))
    ]
    return JSONResponse(AuditListOut(items=items[:limit]).model_dump(mode="json"))


OPERATIONS: list[Op] = [
    Op(
        "get",
        "/v1/events",
        "/v1/events",
        list_events,
        f"Credential events, newest first ({VIEW_ROLES}).",
        EventListOut,
        params=(
            Param("name", "query", {"type": "string", "minLength": 1, "maxLength": 200}),
            LIMIT,
        ),
    ),
    Op(
        "get",
        "/v1/audit",
        "/v1/audit",
        list_audit,
        f"Audit records, newest first ({VIEW_ROLES}).",
        AuditListOut,
        params=(
            LIMIT,
            Param("before", "query", {"type": "integer", "minimum": 1}),
            Param("action", "query", {"type": "string", "minLength": 1, "maxLength": 60}),
            Param("target", "query", {"type": "string", "minLength": 1, "maxLength": 200}),
        ),
    ),
]


# str_param now lives in params; still exported here for older imports.
__all__ = ["OPERATIONS", "list_audit", "list_events", "str_param"]
