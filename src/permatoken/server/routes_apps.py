"""Meta apps over HTTP: list them, register or update one (its secret sealed, never shown).

A grant-limited key sees and changes only the apps its credentials use (``guards.app_visible``).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._secret import Secret, register_secret
from ..access import Action
from ..models import App
from ..store.audit import AuditRecord
from .guards import app_users, app_visible, check_app_change
from .openapi import MANAGE_ROLES, VIEW_ROLES, Op
from .params import broker_of, only_params
from .schemas import AppIn, AppListOut, AppOut


def app_out(a: App) -> AppOut:
    return AppOut(
        id=a.id,
        name=a.name,
        require_app_secret=a.require_app_secret,
        kek_id=a.kek_id,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


async def list_apps(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request)
    apps = await run_in_threadpool(b.store.list_apps)
    if p.grants:
        users = app_users(await run_in_threadpool(b.store.list_status))
        apps = [a for a in apps if app_visible(p, a, users)]
    return JSONResponse(AppListOut(items=[app_out(a) for a in apps]).model_dump(mode="json"))


async def put_app(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.MANAGE)
    only_params(request)
    body = await b.body(request, AppIn)
    if p.grants:
        check_app_change(
            b, request, p, body.id, app_users(await run_in_threadpool(b.store.list_status))
        )
    secret = Secret(body.secret) if body.secret is not None else None
    if secret is not None:
        register_secret(secret)
    app = await run_in_threadpool(
        lambda: b.store.put_app(
            body.id,
            secret,
            name=body.name,
            require_app_secret=body.require_app_secret,
            actor=p.actor,
        )
    )
    detail = {"app_id": body.id, "secret_changed": secret is not None}
    await b.recorder.record_now(
        AuditRecord(
            p.actor, "app.saved", "ok", target=None, source=b.client(request), detail=detail
        )
    )
    return JSONResponse(app_out(app).model_dump(mode="json"))


OPERATIONS: list[Op] = [
    Op(
        "get",
        "/v1/apps",
        "/v1/apps",
        list_apps,
        f"Registered Meta apps ({VIEW_ROLES}).",
        AppListOut,
    ),
    Op(
        "post",
        "/v1/apps",
        "/v1/apps",
        put_app,
        f"Register or update a Meta app ({MANAGE_ROLES}).",
        AppOut,
        body=AppIn,
    ),
]


__all__ = ["OPERATIONS", "list_apps", "put_app"]
