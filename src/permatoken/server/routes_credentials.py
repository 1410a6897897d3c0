"""Credentials over HTTP: list, add, read, change, remove, and rotate, revoke or inspect one."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import policy as policy_mod
from .._secret import Secret, register_secret
from ..access import Action, Principal
from ..models import (
    CredentialStatus,
    Health,
    NewCredential,
    TokenVersion,
    validate_name,
    validate_token_value,
)
from ..rotation import Inspection, RotationOutcome
from ..store.audit import AuditRecord
from ..store.pages import count_credentials, status_page, visible_page
from .broker import Broker
from .errors import ApiError
from .guards import options_for_write
from .metrics import literal_prefix
from .openapi import INT_QUERY, LIMIT, MANAGE_ROLES, NAME, VIEW_ROLES, Op, Param
from .params import broker_of, int_param, only_params, str_param
from .schemas import (
    CredentialCreatedOut,
    CredentialDetailOut,
    CredentialIn,
    CredentialListOut,
    CredentialPatch,
    CredentialStatusOut,
    InspectIn,
    InspectionOut,
    OutcomeOut,
    RevokeIn,
    RotateIn,
    VersionOut,
)

_HEALTH = {h.value for h in Health}


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
    b = broker_of(request)
    p = await b.authenticate(request, action)
    only_params(request)
    name = _name(request)
    b.check(request, p, action, name)
    return b, p, name


def _status_json(st: CredentialStatus, now: datetime) -> dict[str, Any]:
    return st.to_json(now)


def version_out(v: TokenVersion) -> VersionOut:
    return VersionOut(
        version=v.version,
        state=v.state.value,
        fingerprint=v.fingerprint,
        token_type=v.meta.token_type,
        expires_at=v.meta.expires_at,
        is_valid=v.meta.is_valid,
        verdict=v.meta.verdict,
        created_at=v.created_at,
        state_changed_at=v.state_changed_at,
    )


def outcome_out(name: str, o: RotationOutcome) -> OutcomeOut:
    return OutcomeOut(
        name=name,
        status=o.status,
        version=o.version,
        previous_version=o.previous_version,
        expires_at=o.expires_at,
        message=o.message,
        health=o.health.value if o.health else None,
    )


def inspection_out(name: str, version: int, insp: Inspection) -> InspectionOut:
    r = insp.result
    return InspectionOut(
        name=name,
        version=version,
        valid=r.is_valid,
        verdict=insp.verdict.summary,
        advice=insp.verdict.advice,
        health=insp.health.value,
        token_type=r.type,
        expires_at=r.expires_at,
        scopes=list(r.scopes),
        waba_ids=list(r.waba_ids),
        canary_ok=insp.canary_ok,
    )


async def list_credentials(request: Request) -> Response:
    """One page of credentials in name order. ``after`` (the last name of the previous page,
    as in ``next``) walks the name index; ``offset`` is kept for older clients. ``total`` is
    counted for a first page (no ``after``) only: a count reads every row."""
    b = broker_of(request)
    p = await b.authenticate(request, Action.VIEW)
    only_params(request, "tenant", "health", "limit", "offset", "after")
    tenant = str_param(request, "tenant", 64)
    health = str_param(request, "health", 20)
    after = str_param(request, "after", 200)
    if health is not None and health not in _HEALTH:
        raise ApiError(
            422, "invalid_parameter", f"health must be one of: {', '.join(sorted(_HEALTH))}"
        )
    limit = int(int_param(request, "limit", lo=1, hi=1000) or 100)
    offset = int(int_param(request, "offset", lo=0, hi=2**31 - 1) or 0)
    if after is not None and offset:
        raise ApiError(422, "invalid_parameter", "give either after or offset, not both")
    store = b.store

    def load() -> tuple[int | None, list[CredentialStatus], bool]:
        if p.grants:  # grant patterns are matched in Python over the narrowed name range
            prefixes = tuple(literal_prefix(g) for g in p.grants)
            if after is None and offset:
                visible = [
                    s
                    for s in store.list_status(tenant=tenant, health=health)
                    if p.sees(s.credential.name)
                ]
                page = visible[offset : offset + limit]
                return len(visible), page, offset + limit < len(visible)
            page, more = visible_page(
                store,
                p.sees,
                after=after,
                limit=limit,
                tenant=tenant,
                health=health,
                prefixes=prefixes,
            )
            return None, page, more
        total = None
        if after is None:
            total = count_credentials(store, tenant=tenant, health=health)
        if offset:
            rows = store.list_status(tenant=tenant, health=health, limit=limit + 1, offset=offset)
        else:
            rows = status_page(store, after=after, limit=limit + 1, tenant=tenant, health=health)
        return total, rows[:limit], len(rows) > limit

    total, items, more = await run_in_threadpool(load)
    now = b.engine.clock.now()
    nxt = None
    if more and items:
        query = {"after": items[-1].credential.name, "limit": str(limit)}
        query |= {k: v for k, v in (("tenant", tenant), ("health", health)) if v is not None}
        nxt = "/v1/credentials?" + urlencode(query)
    return JSONResponse(
        {
            "items": [_status_json(s, now) for s in items],
            "total": total,
            "limit": limit,
            "offset": offset,
            "next": nxt,
        }
    )


async def create_credential(request: Request) -> Response:
    from ..onboarding import add_credential

    b = broker_of(request)
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
    options, checked = options_for_write(b, request, p, body.name, {}, body.options, creating=True)
    spec = NewCredential(
        name=body.name,
        issuer=body.issuer,
        purpose=body.purpose,
        business_id=body.business_id,
        waba_ids=tuple(body.waba_ids),
        phone_number_id=body.phone_number_id,
        app_id=body.app_id,
        options=options,
        policy=policy,
    )
    online = body.inspect and body.app_id is not None
    result = await b.upstream.run(
        p,
        body.name,
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
        ),
    )
    await _audit(b, request, p, "credential.created", body.name, issuer=body.issuer, **checked)
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
            "versions": [version_out(v).model_dump(mode="json") for v in b.store.versions(name)]
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
    checked: dict[str, Any] = {}
    if "options" in fields:
        before = (await run_in_threadpool(b.store.get, name)).options
        fields["options"], checked = options_for_write(
            b, request, p, name, before, fields["options"], creating=False
        )
    if fields:
        await run_in_threadpool(lambda: b.store.update_credential(name, actor=p.actor, **fields))
    await _audit(b, request, p, "credential.updated", name, fields=sorted(fields), **checked)
    if "upstream" in checked:  # its own action, so `audit list --action` finds every move
        await _audit(b, request, p, "credential.upstream_changed", name, **checked["upstream"])
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
    o = await b.upstream.run(
        p, name, lambda: b.engine.rotate(name, force=body.force, reason=body.reason)
    )
    await _audit(
        b, request, p, "credential.rotated", name, o.status, version=o.version, force=body.force
    )
    return JSONResponse(outcome_out(name, o).model_dump(mode="json"))


async def revoke_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    body = await b.body(request, RevokeIn, optional=True)
    v = await b.upstream.run(p, name, lambda: b.engine.revoke(name, body.version))
    b.hub.changed(name)
    await _audit(b, request, p, "credential.revoked", name, version=v.version)
    return JSONResponse(version_out(v).model_dump(mode="json"))


async def inspect_credential(request: Request) -> Response:
    b, p, name = await _target(request, Action.MANAGE)
    body = await b.body(request, InspectIn, optional=True)
    insp = await b.upstream.run(
        p, name, lambda: b.engine.inspect(name, version=body.version, canary=body.canary)
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
    return JSONResponse(inspection_out(name, v.version, insp).model_dump(mode="json"))


OPERATIONS: list[Op] = [
    Op(
        "get",
        "/v1/credentials",
        "/v1/credentials",
        list_credentials,
        f"List credential status ({VIEW_ROLES}).",
        CredentialListOut,
        params=(
            Param("tenant", "query", {"type": "string", "minLength": 1, "maxLength": 64}),
            Param("health", "query", {"type": "string", "enum": [h.value for h in Health]}),
            LIMIT,
            Param("offset", "query", INT_QUERY),
            Param(
                "after",
                "query",
                {"type": "string", "minLength": 1, "maxLength": 200},
                "The last name of the previous page (see `next`).",
            ),
        ),
    ),
    Op(
        "post",
        "/v1/credentials",
        "/v1/credentials",
        create_credential,
        f"Add a credential ({MANAGE_ROLES}).",
        CredentialCreatedOut,
        status=201,
        body=CredentialIn,
    ),
    Op(
        "post",
        "/v1/credentials/{name}/rotate",
        "/v1/credentials/{name:path}/rotate",
        rotate_credential,
        f"Rotate now ({MANAGE_ROLES}).",
        OutcomeOut,
        body=RotateIn,
        body_required=False,
        params=(NAME,),
    ),
    Op(
        "post",
        "/v1/credentials/{name}/revoke",
        "/v1/credentials/{name:path}/revoke",
        revoke_credential,
        f"Revoke a version upstream and locally ({MANAGE_ROLES}).",
        VersionOut,
        body=RevokeIn,
        body_required=False,
        params=(NAME,),
    ),
    Op(
        "post",
        "/v1/credentials/{name}/inspect",
        "/v1/credentials/{name:path}/inspect",
        inspect_credential,
        f"Ask Meta about a version ({MANAGE_ROLES}).",
        InspectionOut,
        body=InspectIn,
        body_required=False,
        params=(NAME,),
    ),
    Op(
        "get",
        "/v1/credentials/{name}",
        "/v1/credentials/{name:path}",
        get_credential,
        f"One credential with its versions ({VIEW_ROLES}).",
        CredentialDetailOut,
        params=(NAME,),
    ),
    Op(
        "patch",
        "/v1/credentials/{name}",
        "/v1/credentials/{name:path}",
        patch_credential,
        f"Change settings ({MANAGE_ROLES}).",
        CredentialStatusOut,
        body=CredentialPatch,
        params=(NAME,),
    ),
    Op(
        "delete",
        "/v1/credentials/{name}",
        "/v1/credentials/{name:path}",
        delete_credential,
        f"Remove a credential ({MANAGE_ROLES}).",
        None,
        status=204,
        params=(NAME,),
    ),
]


__all__ = [
    "OPERATIONS",
    "create_credential",
    "delete_credential",
    "get_credential",
    "inspect_credential",
    "list_credentials",
    "patch_credential",
    "revoke_credential",
    "rotate_credential",
]
