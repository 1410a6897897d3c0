"""API keys over HTTP (admin): list, create (the key shown once), revoke.

A grant-limited admin manages only keys within its own grants (``Principal.contains``): it can
neither mint a key that reaches further than itself nor see or revoke other tenants' keys.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._exceptions import NotFoundError
from ..access import Action
from .errors import ApiError
from .guards import check_new_key_grants, key_visible
from .openapi import Op, Param
from .params import broker_of, only_params
from .schemas import KeyCreatedOut, KeyIn, KeyListOut, KeyOut


def _no_key() -> ApiError:
    return ApiError(404, "not_found", "no API key with that id")


async def list_keys(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.KEYS)
    only_params(request)
    keys = await run_in_threadpool(b.keys.list)
    items = [KeyOut.model_validate(k.to_json()) for k in keys if key_visible(p, k)]
    return JSONResponse(KeyListOut(items=items).model_dump(mode="json"))


async def create_key(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.KEYS)
    only_params(request)
    body = await b.body(request, KeyIn)
    check_new_key_grants(b, request, p, body.grants)
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
        KeyCreatedOut.model_validate(key.to_json() | {"key": value.reveal()}).model_dump(
            mode="json"
        ),
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def revoke_key(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.KEYS)
    only_params(request)
    key_id = request.path_params["key_id"]
    if not (0 < len(key_id) <= 24 and key_id.isalnum()):
        raise _no_key()
    try:
        existing = await run_in_threadpool(b.keys.get, key_id)
    except NotFoundError:
        raise _no_key() from None
    if not key_visible(p, existing):
        # Outside this admin's grants: the same answer as an unknown id (ids are not probed).
        b.recorder.add(b.denial(request, p, Action.KEYS, None, reason=f"revoke {key_id}"))
        raise _no_key()
    key = await run_in_threadpool(
        lambda: b.keys.revoke(key_id, actor=p.actor, source=b.client(request))
    )
    b.revoked(key_id)
    return JSONResponse(KeyOut.model_validate(key.to_json()).model_dump(mode="json"))


OPERATIONS: list[Op] = [
    Op("get", "/v1/keys", "/v1/keys", list_keys, "API keys (admin).", KeyListOut),
    Op(
        "post",
        "/v1/keys",
        "/v1/keys",
        create_key,
        "Create an API key; the key is in the answer, once (admin).",
        KeyCreatedOut,
        status=201,
        body=KeyIn,
    ),
    Op(
        "delete",
        "/v1/keys/{key_id}",
        "/v1/keys/{key_id}",
        revoke_key,
        "Revoke an API key (admin).",
        KeyOut,
        params=(
            Param(
                "key_id",
                "path",
                {"type": "string", "minLength": 1, "maxLength": 24},
                required=True,
            ),
        ),
    ),
]


__all__ = ["OPERATIONS", "create_key", "list_keys", "revoke_key"]
