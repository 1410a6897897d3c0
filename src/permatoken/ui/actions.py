"""Sign-in, sign-out and the dashboard's forms (POST), each calling what the API route calls.

- Sign-in checks the key with the API's :class:`~permatoken.server.auth.Authenticator` (the same
  cache, the same failed-auth buckets: a guessing browser is slowed down, 429, like a script).
  App keys cannot sign in (they read tokens; the dashboard never shows one).
- Every form is a :func:`~.web.form`: a session and its CSRF token first; then the key's role
  and grants through ``Broker.check`` (403, audited as ``denied.*``, nothing done).
- Rotate, inspect and revoke go through ``Broker.upstream`` to the engine, exactly as
  ``POST /v1/credentials/{name}/rotate|inspect|revoke`` do, and are audited with the same actions.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._exceptions import NotFoundError
from ..access import Action, Role, parse_duration, validate_grant
from ..models import VersionState, validate_name
from ..server.errors import ApiError
from ..store import ui_notices as notices
from ..store import ui_sessions as us
from ..store.audit import AuditRecord
from .web import COOKIE, LOGIN_COOKIE, Ui, Viewer, _form, _ui, form, sign, wall_now


def _safe_next(target: str | None) -> str:
    """Only our own pages: a path under /ui/, never another host (open redirect)."""
    if target and target.startswith("/ui/") and "//" not in target and "\\" not in target:
        return quote(target, safe="/")
    return "/ui/"


async def login_page(request: Request) -> Response:
    ui = _ui(request)
    return _login_form(ui, request, None, 200)


def _login_form(ui: Ui, request: Request, message: str | None, status: int) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = ui.render(
        request,
        "login.html",
        None,
        http_status=status,
        message=message,
        login_csrf=nonce,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=600,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=ui.cookie_secure(request),
    )
    return response


async def login(request: Request) -> Response:
    ui = _ui(request)
    b = ui.broker
    data = await _form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(data.get("csrf", "").encode(), expected.encode()):
        return _login_form(ui, request, "The sign-in form expired: try again.", 403)
    key = data.get("key", "").strip()
    try:
        p = await b.auth.authenticate(f"Bearer {key}", b.client(request))
    except ApiError as exc:
        text = (
            "Too many failed sign-ins from this address: " + exc.message
            if exc.status == 429
            else "That API key was not accepted (" + exc.message + ")."
        )
        response = _login_form(ui, request, text, exc.status)
        if exc.headers and "Retry-After" in exc.headers:
            response.headers["Retry-After"] = exc.headers["Retry-After"]
        return response
    if p.role is Role.APP:
        b.recorder.add(AuditRecord(p.actor, "ui.login", "refused", source=b.client(request)))
        return _login_form(
            ui,
            request,
            "App keys cannot sign in to the dashboard: use a reader, operator or admin key "
            "(`permatoken keys create --role reader`).",
            403,
        )
    now = wall_now()
    settings = ui.settings

    def open_session() -> str:
        # Sign-ins are rare: the moment to clear sessions that timed out.
        us.end_stale_sessions(b.store, now, settings.session_idle, settings.session_max)
        return us.create_session(b.store, p.key_id, now, b.client(request))[0]

    session_id = await run_in_threadpool(open_session)
    await b.recorder.record_now(AuditRecord(p.actor, "ui.login", "ok", source=b.client(request)))
    response = RedirectResponse(_safe_next(data.get("next")), status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=ui.cookie_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@form
async def logout(ui: Ui, request: Request, viewer: Viewer) -> Response:
    await run_in_threadpool(us.end_session, ui.broker.store, viewer.session.id_hash)
    ui.broker.recorder.add(AuditRecord(viewer.principal.actor, "ui.logout", "ok"))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# --- credentials -----------------------------------------------------------------------------
def _name(ui: Ui, request: Request, viewer: Viewer) -> str:
    name = validate_name(request.path_params["name"])
    ui.broker.check(request, viewer.principal, Action.MANAGE, name)
    return name


async def _audit(
    ui: Ui, request: Request, viewer: Viewer, action: str, name: str, result: str, **detail: Any
) -> None:
    b = ui.broker
    await b.recorder.record_now(
        AuditRecord(
            viewer.principal.actor,
            action,
            result,
            target=name,
            source=b.client(request),
            detail=detail | {"via": "ui"},
        )
    )


def _back(viewer: Viewer, name: str, message: str) -> Response:
    text = message[:200]
    return RedirectResponse(
        f"/ui/credentials/{quote(name, safe='/')}?done={quote(text)}&sig={sign(viewer, text)}",
        status_code=303,
    )


@form
async def rotate(ui: Ui, request: Request, viewer: Viewer) -> Response:
    b = ui.broker
    name = _name(ui, request, viewer)
    force = request.state.form.get("force") == "1"
    await run_in_threadpool(b.store.get, name)  # 404 before any work
    o = await b.upstream.run(
        viewer.principal, name, lambda: b.engine.rotate(name, force=force, reason="dashboard")
    )
    await _audit(
        ui, request, viewer, "credential.rotated", name, o.status, version=o.version, force=force
    )
    return _back(viewer, name, o.message or f"rotation: {o.status}")


@form
async def inspect(ui: Ui, request: Request, viewer: Viewer) -> Response:
    b = ui.broker
    name = _name(ui, request, viewer)
    insp = await b.upstream.run(viewer.principal, name, lambda: b.engine.inspect(name))
    r = insp.result
    await _audit(
        ui, request, viewer, "credential.inspected", name, "valid" if r.is_valid else "invalid"
    )
    return _back(viewer, name, f"Meta says: {insp.verdict.summary}")


@form
async def revoke_previous(ui: Ui, request: Request, viewer: Viewer) -> Response:
    b = ui.broker
    name = _name(ui, request, viewer)
    versions = await run_in_threadpool(b.store.versions, name)
    previous = [v for v in versions if v.state is VersionState.PREVIOUS]
    if not previous:
        raise ApiError(409, "conflict", f"{name} has no previous version to revoke")
    number = previous[-1].version
    v = await b.upstream.run(viewer.principal, name, lambda: b.engine.revoke(name, number))
    b.hub.changed(name)
    await _audit(ui, request, viewer, "credential.revoked", name, "ok", version=v.version)
    return _back(viewer, name, f"version {v.version} revoked")


@form
async def acknowledge(ui: Ui, request: Request, viewer: Viewer) -> Response:
    b = ui.broker
    raw = request.path_params["notice_id"]
    name = await run_in_threadpool(notices.notice_credential, b.store, int(raw))
    if name is None:
        raise ApiError(404, "not_found", "no notice with that id")
    b.check(request, viewer.principal, Action.MANAGE, name)
    fresh = await run_in_threadpool(
        notices.acknowledge, b.store, int(raw), viewer.principal.actor, b.engine.clock.now()
    )
    await _audit(
        ui,
        request,
        viewer,
        "notice.acknowledged",
        name,
        "ok" if fresh else "already",
        notice=int(raw),
    )
    target = request.state.form.get("back")
    return RedirectResponse(_safe_next(target) if target else "/ui/needs-human", status_code=303)


# --- API keys (admin) ----------------------------------------------------------------------------
@form
async def create_key(ui: Ui, request: Request, viewer: Viewer) -> Response:
    from ..server.guards import check_new_key_grants, key_visible

    b = ui.broker
    if not viewer.can("keys"):
        b.deny(request, viewer.principal, Action.KEYS, None)
    data = request.state.form
    try:
        role = Role(data.get("role", ""))
    except ValueError:
        raise ApiError(
            422, "validation_error", "role must be admin, operator, reader or app"
        ) from None
    grants = tuple(
        validate_grant(g.strip()) for g in data.get("grants", "").split(",") if g.strip()
    )
    expires_in = parse_duration(data["expires_in"]) if data.get("expires_in", "").strip() else None
    label = (data.get("label") or "").strip()[:80] or None
    check_new_key_grants(b, request, viewer.principal, list(grants))
    key, value = await run_in_threadpool(
        lambda: b.keys.create(
            role,
            list(grants),
            expires_in=expires_in,
            label=label,
            actor=viewer.principal.actor,
            source=b.client(request),
        )
    )
    keys = [k for k in await run_in_threadpool(b.keys.list) if key_visible(viewer.principal, k)]
    # The new API key is shown once, on this answer only (no-store; never in a URL or a log).
    return ui.render(request, "keys.html", viewer, keys=keys, created=(key, value.reveal()))


@form
async def revoke_key(ui: Ui, request: Request, viewer: Viewer) -> Response:
    from ..server.guards import key_visible

    b = ui.broker
    if not viewer.can("keys"):
        b.deny(request, viewer.principal, Action.KEYS, None)
    key_id = request.path_params["key_id"]
    if not (0 < len(key_id) <= 24 and key_id.isalnum()):
        raise ApiError(404, "not_found", "no API key with that id")
    try:
        existing = await run_in_threadpool(b.keys.get, key_id)
    except NotFoundError:
        existing = None
    if existing is None or not key_visible(viewer.principal, existing):
        raise ApiError(404, "not_found", "no API key with that id")
    await run_in_threadpool(
        lambda: b.keys.revoke(key_id, actor=viewer.principal.actor, source=b.client(request))
    )
    b.revoked(key_id)
    await run_in_threadpool(us.end_key_sessions, b.store, key_id)
    return RedirectResponse("/ui/keys", status_code=303)


__all__ = [
    "acknowledge",
    "create_key",
    "inspect",
    "login",
    "login_page",
    "logout",
    "revoke_key",
    "revoke_previous",
    "rotate",
]
