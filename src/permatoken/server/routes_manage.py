"""Management: credentials, apps, events, audit and API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import policy as policy_mod
from .._secret import Secret, register_secret
from ..models import (
    App,
    CredentialStatus,
    Health,
    NewCredential,
    TokenVersion,
    validate_name,
    validate_token_value,
)
from ..store.schema import credentials
from ..timeutil import isoformat
from .access import Action, Principal
from .audit import AuditRecord
from .broker import Broker
from .errors import ApiError
from .routes_tokens import _broker, _int_param, only_params
from .schemas import AppIn, CredentialIn, CredentialPatch, InspectIn, KeyIn, RevokeIn, RotateIn

_HEALTH = {h.value for h in Health}


def _str_param(request: Request, key: str, max_len: int) -> str | None:
    value = request.query_params.get(key)
    if value is None:
        return None
    if not value or len(value) > max_len:
        raise ApiError(
            422, "invalid_parameter", f"query parameter {key} must be 1-{max_len} characters"
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC)


async def _audit(
    b: Broker,
    request: Request,
    p: Principal,
    action: str,
    target: str | None = None,
    result: str = "ok",
    **detail: Any,
) -> None:
    await b.recorder.record_now(
        AuditRecord(p.actor, action, result, target=target, source=b.client(request), detail=detail)
    )


def _name(request: Request) -> str:
    return validate_name(request.path_params["name"])


async def _target(request: Request, action: Action) -> tuple[Broker, Principal, str]:
    """The preamble of every route on one credential: caller, no query, valid name, allowed."""
    b = _broker(request)
    p = await b.authenticate(request, action)
    only_params(request)
    name = _name(request)
    b.check(request, p, action, name)
    return b, p, name


def _status_json(st: CredentialStatus, now: datetime) -> dict[str, Any]:
    return st.to_json(now)


def _version_json(v: TokenVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "state": v.state.value,
        "fingerprint": v.fingerprint,
        "token_type": v.meta.token_type,
        "expires_at": isoformat(v.meta.expires_at),
        "is_valid": v.meta.is_valid,
        "verdict": v.meta.verdict,
        "created_at": isoformat(v.created_at),
        "state_changed_at": isoformat(v.state_changed_at),
    }


def _app_json(a: App) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "require_app_secret": a.require_app_secret,
        "kek_id": a.kek_id,
        "created_at": isoformat(a.created_at),
        "updated_at": isoformat(a.updated_at),
    }


# --- credentials -------------------------------------------------------------------------------
async def list_credentials(request: Request) -> Response:
    b = _broker(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request, "tenant", "health", "limit", "offset")
    tenant = _str_param(request, "tenant", 64)
    health = _str_param(request, "health", 20)
    if health is not None and health not in _HEALTH:
        raise ApiError(
            422, "invalid_parameter", f"health must be one of: {', '.join(sorted(_HEALTH))}"
        )
    limit = int(_int_param(request, "limit", lo=1, hi=1000) or 100)
    offset = int(_int_param(request, "offset", lo=0, hi=2**31 - 1) or 0)
    store = b.store

    def load() -> tuple[int, list[CredentialStatus]]:
        if p.grants:  # filter by pattern in Python (management path, not the hot path)
            visible = [
                s
                for s in store.list_status(tenant=tenant, health=health)
                if p.sees(s.credential.name)
            ]
            return len(visible), visible[offset : offset + limit]
        q = sa.select(sa.func.count()).select_from(credentials)
        if tenant is not None:
            q = q.where(credentials.c.tenant == tenant)
        if health is not None:
            q = q.where(credentials.c.health == health)
        with store.read() as conn:
            total = int(conn.execute(q).scalar() or 0)
        return total, store.list_status(tenant=tenant, health=health, limit=limit, offset=offset)

    total, items = await run_in_threadpool(load)
    now = b.engine.clock.now()
    return JSONResponse(
        {
            "items": [_status_json(s, now) for s in items],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


async def create_credential(request: Request) -> Response:
    from ..onboarding import add_credential

    b = _broker(request)
    p = await b.authenticate(request, Action.MANAGE)
    only_params(request)
    body = await b.body(request, CredentialIn)
    b.check(request, p, Action.MANAGE, body.name)
    validate_name(body.name)
    token = validate_token_value(body.token) if body.token is not None else None
    if token is not None:
        register_secret(token)
    secrets: dict[str, Secret] = {str(k): Secret(v) for k, v in body.secrets.items()}
    for v in secrets.values():
        register_secret(v)
    if body.expires_at is not None and body.never_expires:
        raise ApiError(422, "validation_error", "give either expires_at or never_expires, not both")
    policy = policy_mod.to_layer(policy_mod.parse_overrides(dict(body.policy)))
    spec = NewCredential(
        name=body.name,
        issuer=body.issuer,
        purpose=body.purpose,
        business_id=body.business_id,
        waba_ids=tuple(body.waba_ids),
        phone_number_id=body.phone_number_id,
        app_id=body.app_id,
        options=dict(body.options),
        policy=policy,
    )
    online = body.inspect and body.app_id is not None
    result = await run_in_threadpool(
        lambda: add_credential(
            b.settings,
            b.store,
            spec,
            token,
            secrets=secrets,
            inspect_online=online,
            expiry=body.expires_at,
            never_expires=body.never_expires,
            token_type=body.token_type,
            actor=p.actor,
        )
    )
    await _audit(b, request, p, "credential.created", body.name, issuer=body.issuer)
    out = _status_json(result.status, b.engine.clock.now()) | {
        "verdict": result.verdict,
        "advice": result.advice,
    }
    return JSONResponse(out, status_code=201)


async def get_credential(request: Request) -> Response:
    b, _, name = await _target(request, Action.VIEW)

    def load() -> dict[str, Any]:
        st = b.store.status(name)
        return _status_json(st, b.engine.clock.now()) | {
            "versions": [_version_json(v) for v in b.store.versions(name)]
        }

    return JSONResponse(await run_in_threadpool(load))


async def patch_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    body = await b.body(request, CredentialPatch)
    fields = body.model_dump(exclude_unset=True)
    if fields.get("policy") is not None:
        fields["policy"] = policy_mod.to_layer(policy_mod.parse_overrides(fields["policy"]))
    for key in ("options", "policy", "waba_ids", "issuer"):
        if key in fields and fields[key] is None:
            raise ApiError(422, "validation_error", f"invalid request body: {key}: may not be null")
    if fields:
        await run_in_threadpool(lambda: b.store.update_credential(name, actor=p.actor, **fields))
    await _audit(b, request, p, "credential.updated", name, fields=sorted(fields))
    return JSONResponse(
        _status_json(await run_in_threadpool(b.store.status, name), b.engine.clock.now())
    )


async def delete_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    await run_in_threadpool(lambda: b.store.remove(name, actor=p.actor))
    b.hub.changed(name, removed=True)
    await _audit(b, request, p, "credential.removed", name)
    return Response(status_code=204)


async def rotate_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    body = await b.body(request, RotateIn, optional=True)
    await run_in_threadpool(b.store.get, name)  # 404 before any work
    o = await run_in_threadpool(lambda: b.engine.rotate(name, force=body.force, reason=body.reason))
    await _audit(
        b, request, p, "credential.rotated", name, o.status, version=o.version, force=body.force
    )
    return JSONResponse(
        {
            "name": name,
            "status": o.status,
            "version": o.version,
            "previous_version": o.previous_version,
            "expires_at": isoformat(o.expires_at),
            "message": o.message,
            "health": o.health.value if o.health else None,
        }
    )


async def revoke_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    body = await b.body(request, RevokeIn, optional=True)
    v = await run_in_threadpool(lambda: b.engine.revoke(name, body.version))
    b.hub.changed(name)
    await _audit(b, request, p, "credential.revoked", name, version=v.version)
    return JSONResponse(_version_json(v))


async def inspect_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    body = await b.body(request, InspectIn, optional=True)
    insp = await run_in_threadpool(
        lambda: b.engine.inspect(name, version=body.version, canary=body.canary)
    )
    v = await run_in_threadpool(lambda: b.store.version(name, body.version))
    r = insp.result
    await _audit(
        b,
        request,
        p,
        "credential.inspected",
        name,
        "valid" if r.is_valid else "invalid",
        version=v.version,
    )
    return JSONResponse(
        {
            "name": name,
            "version": v.version,
            "valid": r.is_valid,
            "verdict": insp.verdict.summary,
            "advice": insp.verdict.advice,
            "health": insp.health.value,
            "token_type": r.type,
            "expires_at": isoformat(r.expires_at),
            "scopes": list(r.scopes),
            "waba_ids": list(r.waba_ids),
            "canary_ok": insp.canary_ok,
        }
    )


# --- apps, events, audit --------------------------------------------------------------------------
async def list_apps(request: Request) -> Response:
    b = _broker(request)
    await b.authenticate(request, Action.VIEW)
    only_params(request)
    apps = await run_in_threadpool(b.store.list_apps)
    return JSONResponse({"items": [_app_json(a) for a in apps]})


async def put_app(request: Request) -> Response:
    b = _broker(request)
    p = await b.authenticate(request, Action.MANAGE)
    only_params(request)
    body = await b.body(request, AppIn)
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
    await _audit(
        b, request, p, "app.saved", None, app_id=body.id, secret_changed=secret is not None
    )
    return JSONResponse(_app_json(app))


async def list_events(request: Request) -> Response:
    b = _broker(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request, "name", "limit")
    name = _str_param(request, "name", 200)
    if name is not None:
        validate_name(name)
        b.check(request, p, Action.VIEW, name)
    limit = int(_int_param(request, "limit", lo=1, hi=1000) or 100)
    evs = await run_in_threadpool(
        lambda: b.store.events(name, limit=limit if not p.grants else 1000)
    )
    items = [
        {
            "id": e.id,
            "name": e.credential_name,
            "kind": e.kind,
            "at": isoformat(e.at),
            "actor": e.actor,
            "detail": e.detail,
        }
        for e in evs
        if not p.grants or (e.credential_name and p.sees(e.credential_name))
    ]
    return JSONResponse({"items": items[:limit]})


async def list_audit(request: Request) -> Response:
    b = _broker(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request, "limit", "before", "action", "target")
    limit = int(_int_param(request, "limit", lo=1, hi=1000) or 100)
    before = _int_param(request, "before", lo=1, hi=2**62)
    action = _str_param(request, "action", 60)
    target = _str_param(request, "target", 200)
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
    items = [r.to_json() for r in recs if not p.grants or (r.target and p.sees(r.target))]
    return JSONResponse({"items": items[:limit]})


# --- API keys -----------------------------------------------------------------------------------
async def list_keys(request: Request) -> Response:
    b = _broker(request)
    await b.authenticate(request, Action.KEYS)
    only_params(request)
    keys = await run_in_threadpool(b.keys.list)
    return JSONResponse({"items": [k.to_json() for k in keys]})


async def create_key(request: Request) -> Response:
    b = _broker(request)
    p = await b.authenticate(request, Action.KEYS)
    only_params(request)
    body = await b.body(request, KeyIn)
    key, value = await run_in_threadpool(
        lambda: b.keys.create(
            body.role,
            body.grants,
            expires_in=body.expires_in,
            label=body.label,
            actor=p.actor,
            source=b.client(request),
        )
    )
    return JSONResponse(
        key.to_json() | {"key": value.reveal()},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def revoke_key(request: Request) -> Response:
    b = _broker(request)
    p = await b.authenticate(request, Action.KEYS)
    only_params(request)
    key_id = request.path_params["key_id"]
    if not (0 < len(key_id) <= 24 and key_id.isalnum()):
        raise ApiError(404, "not_found", "no API key with that id")
    key = await run_in_threadpool(
        lambda: b.keys.revoke(key_id, actor=p.actor, source=b.client(request))
    )
    b.auth.forget(key_id)
    return JSONResponse(key.to_json())


__all__ = [
    "create_credential",
    "create_key",
    "delete_credential",
    "get_credential",
    "inspect_credential",
    "list_apps",
    "list_audit",
    "list_credentials",
    "list_events",
    "list_keys",
    "patch_credential",
    "put_app",
    "revoke_credential",
    "revoke_key",
    "rotate_credential",
]
