"""The OpenAPI 3.1 document of the ``/_sandbox/`` control API, written by hand (no YAML needed)."""

from __future__ import annotations

from typing import Any

from permatoken.sandbox.faults import FAULT_KINDS
from permatoken.sandbox.models import TOKEN_KINDS
from permatoken.sandbox.routing import ENDPOINTS
from permatoken.sandbox.signing import BAN_STATES, AccountEvent
from permatoken.sandbox.webhooks import STATUSES


def _obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


_S, _I, _N, _B = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
_NULL_I = {"type": ["integer", "null"]}
_LIST = {"type": "array", "items": {"type": "object"}}
_DATA = _obj(data=_LIST)

TOKEN = _obj(
    value=_S,
    type={"enum": ["USER", "SYSTEM_USER", "APP"]},
    kind={"enum": list(TOKEN_KINDS)},
    issued_at=_I,
    expires_at={**_I, "description": "unix seconds; 0 = never"},
    app_id=_S,
    user_id=_S,
    system_user_id={"type": ["string", "null"]},
    business_id={"type": ["string", "null"]},
    scopes={"type": "array", "items": _S},
    waba_ids={"type": "array", "items": _S},
    revoked=_B,
)
CLOCK = _obj(now=_N, frozen=_B, offset_seconds=_N)
FAULT = _obj(
    endpoint={"type": "string", "enum": ["*", *ENDPOINTS]},
    kind={"enum": list(FAULT_KINDS)},
    count={**_NULL_I, "description": "calls to hit; null = unlimited (with fraction)"},
    fraction={"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
    code=_NULL_I,
    subcode=_NULL_I,
    http_status=_NULL_I,
    message={"type": ["string", "null"]},
    body={"type": ["string", "null"], "description": "raw body instead of Meta's envelope"},
    latency_seconds=_N,
    timeout_seconds=_N,
    json={"description": "respond: any JSON value to answer with (instead of body)"},
    headers={"type": "object", "additionalProperties": _S, "description": "respond: extra"},
    content_type={"type": ["string", "null"], "description": "respond: Content-Type"},
    repeat={**_I, "minimum": 1, "description": "respond: body (or json) repeated N times"},
    body_prefix={**_S, "description": "respond: text before the repeated body"},
    body_suffix={**_S, "description": "respond: text after the repeated body"},
    chunk_bytes={**_NULL_I, "description": "respond: send the body in chunks of this size"},
    chunk_delay_seconds={**_N, "description": "respond: pause between chunks (a slow drip)"},
)

DELIVERY = _obj(
    id=_I,
    kind={"enum": ["webhook", "deauthorize"]},
    event=_S,
    app_id=_S,
    waba_id={"type": ["string", "null"]},
    url={"type": ["string", "null"]},
    created_at=_N,
    copy={**_I, "description": "2 for the duplicate sent by webhook_duplicates"},
    status={"enum": list(STATUSES)},
    reason={"type": ["string", "null"]},
    attempts={
        "type": "array",
        "items": _obj(at=_N, status_code=_NULL_I, error={"type": ["string", "null"]}),
    },
    payload={"type": "object", "description": "the envelope sent, or the unsigned payload"},
)
EVENT_RESULT = _obj(
    event=_S,
    business_id=_S,
    app_id=_S,
    waba_ids={"type": "array", "items": _S},
    revoked_tokens=_I,
    deliveries={"type": "array", "items": DELIVERY},
)

# (method, path, summary, request schema or None, response schema)
OPERATIONS: list[tuple[str, str, str, dict[str, Any] | None, dict[str, Any]]] = [
    ("get", "/_sandbox/openapi.json", "This document", None, {"type": "object"}),
    (
        "get",
        "/_sandbox/fixtures",
        "The world as fixtures JSON (docs/sandbox.md)",
        None,
        {"type": "object"},
    ),
    ("post", "/_sandbox/reset", "Forget everything and reseed", _obj(seed=_B), {"type": "object"}),
    ("get", "/_sandbox/clock", "Read the sandbox clock", None, CLOCK),
    (
        "post",
        "/_sandbox/clock",
        "Advance, freeze, unfreeze or offset the clock",
        _obj(advance_seconds=_N, freeze=_B, freeze_at=_N, unfreeze=_B, offset_seconds=_N),
        CLOCK,
    ),
    ("get", "/_sandbox/config", "Read SandboxConfig", None, {"type": "object"}),
    (
        "patch",
        "/_sandbox/config",
        "Change SandboxConfig fields; a new webhook_url or webhook_verify_token is verified "
        "first (Meta's hub.challenge handshake): on failure 400 and nothing changes",
        {"type": "object"},
        {"type": "object"},
    ),
    (
        "post",
        "/_sandbox/objects/{kind}",
        "Create an app, business, system user, WABA or phone number",
        _obj(
            name=_S,
            require_app_secret=_B,
            requires_expiring_tokens=_B,
            business_id=_S,
            waba_id=_S,
            role=_S,
            display_phone_number=_S,
        ),
        {"type": "object"},
    ),
    (
        "post",
        "/_sandbox/codes",
        "Create an Embedded Signup code (single use, 30 s)",
        _obj(app_id=_S, business_id=_S, redirect_uri=_S),
        _obj(code=_S),
    ),
    (
        "post",
        "/_sandbox/tokens",
        "Create a token of any kind",
        _obj(
            ["kind"],
            kind={"enum": list(TOKEN_KINDS)},
            app_id=_S,
            system_user_id=_S,
            business_id=_S,
            scopes={"type": "array", "items": _S},
            waba_ids={"type": "array", "items": _S},
            expires_in=_I,
            expires_at=_I,
        ),
        TOKEN,
    ),
    (
        "post",
        "/_sandbox/tokens/revoke",
        "Revoke or invalidate a token with a chosen subcode",
        _obj(["value"], value=_S, subcode=_I),
        TOKEN,
    ),
    (
        "post",
        "/_sandbox/tokens/expire",
        "Make a token expired as of now",
        _obj(["value"], value=_S),
        TOKEN,
    ),
    (
        "post",
        "/_sandbox/oauth2/grants",
        "Start a new OAuth2 refresh-token family",
        _obj(client_id=_S),
        _obj(access_token=_S, refresh_token=_S, expires_in=_I),
    ),
    ("get", "/_sandbox/faults", "List pending faults", None, _DATA),
    ("post", "/_sandbox/faults", "Inject a fault", FAULT, FAULT),
    ("delete", "/_sandbox/faults", "Remove all faults", None, _DATA),
    ("delete", "/_sandbox/faults/{fault_id}", "Remove one fault", None, _obj(success=_B)),
    (
        "get",
        "/_sandbox/calls",
        "Calls received per endpoint (token fingerprints only)",
        None,
        _DATA,
    ),
    ("delete", "/_sandbox/calls", "Clear the calls and messages logs", None, _DATA),
    (
        "get",
        "/_sandbox/messages",
        "Messages accepted by POST /{phone-number-id}/messages",
        None,
        _DATA,
    ),
    ("delete", "/_sandbox/messages", "Clear the calls and messages logs", None, _DATA),
    (
        "get",
        "/_sandbox/media",
        "Uploads accepted by POST /{phone-number-id}/media (size and SHA-256)",
        None,
        _DATA,
    ),
    (
        "post",
        "/_sandbox/embedded_signup",
        "A new client business completes Embedded Signup (business, WABA, number, code)",
        _obj(app_id=_S, business_name=_S),
        _obj(
            ["code", "business_id", "waba_id", "phone_number_id"],
            code={**_S, "description": "single use, lives code_ttl_seconds (30 s)"},
            business_id=_S,
            waba_id=_S,
            phone_number_id=_S,
        ),
    ),
    (
        "post",
        "/_sandbox/businesses/{business_id}/uninstall",
        "The business removes the app: its tokens die, PARTNER_APP_UNINSTALLED per WABA",
        _obj(app_id=_S),
        EVENT_RESULT,
    ),
    (
        "post",
        "/_sandbox/businesses/{business_id}/install",
        "The business grants the app again: PARTNER_APP_INSTALLED per WABA",
        _obj(app_id=_S),
        EVENT_RESULT,
    ),
    (
        "post",
        "/_sandbox/wabas/{waba_id}/events",
        "Raise an account_update event on a WABA, with its effects",
        _obj(
            ["event"],
            event={"enum": [e.value for e in AccountEvent]},
            app_id=_S,
            ban_state={"enum": list(BAN_STATES), "description": "DISABLED_UPDATE only"},
        ),
        EVENT_RESULT,
    ),
    (
        "post",
        "/_sandbox/deauthorize",
        "A person removes the app: tokens die, signed_request to deauthorize_url",
        _obj(["user_id"], user_id=_S, app_id=_S),
        _obj(user_id=_S, app_id=_S, revoked_tokens=_I, delivery=DELIVERY),
    ),
    (
        "get",
        "/_sandbox/webhooks",
        "Webhook and deauthorize deliveries",
        None,
        _obj(data={"type": "array", "items": DELIVERY}),
    ),
    (
        "post",
        "/_sandbox/webhooks/flush",
        "Release deliveries held by webhook_reorder now, newest first",
        None,
        _obj(data={"type": "array", "items": DELIVERY}),
    ),
]


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    error = {
        "description": "bad input",
        "content": {"application/json": {"schema": _obj(error=_obj(message=_S, type=_S, code=_I))}},
    }
    for method, path, summary, request, response in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
                "400": error,
                "404": error,
            },
        }
        if request is not None:
            operation["requestBody"] = {"content": {"application/json": {"schema": request}}}
        params = []
        if "{kind}" in path:
            params.append(
                {
                    "name": "kind",
                    "in": "path",
                    "required": True,
                    "schema": {
                        "enum": ["apps", "businesses", "system_users", "wabas", "phone_numbers"]
                    },
                }
            )
        if "{fault_id}" in path:
            params.append({"name": "fault_id", "in": "path", "required": True, "schema": _I})
        for name in ("business_id", "waba_id"):
            if f"{{{name}}}" in path:
                params.append({"name": name, "in": "path", "required": True, "schema": _S})
        if path == "/_sandbox/calls" and method == "get":
            params.append(
                {
                    "name": "endpoint",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": list(ENDPOINTS)},
                }
            )
        if params:
            operation["parameters"] = params
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "permatoken sandbox control API",
            "version": "1",
            "description": "Controls the local imitation of the Meta Graph API. Imitated "
            "endpoints: " + ", ".join(ENDPOINTS),
        },
        "paths": paths,
    }
