"""The ``/_sandbox/`` control API: clock, objects, tokens, faults, logs, config.

Unauthenticated on purpose: the sandbox is a local test double. Token values travel in JSON
bodies, never in paths, so they stay out of access logs. Described by ``/_sandbox/openapi.json``.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from permatoken.sandbox.openapi import openapi_document
from permatoken.sandbox.state import SandboxState
from permatoken.sandbox.verification import averify_endpoint, check_settings, needs_handshake

Endpoint = Callable[[Request], Awaitable[JSONResponse]]
_MAX_BODY = 64 * 1024


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _error(message: str, status: int) -> JSONResponse:
    body = {"error": {"message": message, "type": "SandboxControlError", "code": 100}}
    return JSONResponse(body, status_code=status)


def endpoint(fn: Callable[[Request, SandboxState, dict[str, Any]], Any]) -> Endpoint:
    """Parse the JSON body, call ``fn``, map bad input to 400 and unknown ids to 404."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> JSONResponse:
        state: SandboxState = request.app.state.sandbox
        try:
            raw = await request.body()
            if len(raw) > _MAX_BODY:
                raise ControlError("request body too large", 413)
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ControlError("the request body must be a JSON object")
            result = fn(request, state, body)
            if inspect.isawaitable(result):
                result = await result
        except ControlError as exc:
            return _error(exc.message, exc.status)
        except json.JSONDecodeError:
            return _error("the request body is not valid JSON", 400)
        except KeyError as exc:
            return _error(str(exc.args[0]) if exc.args else "not found", 404)
        except (ValueError, TypeError) as exc:
            return _error(str(exc), 400)
        return JSONResponse(result)

    return wrapper


def _get(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    value = body.get(name, default)
    if value is ...:
        raise ControlError(f"{name} is required")
    if (
        value is not None
        and value is not default
        and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool))
    ):
        raise ControlError(f"{name} has the wrong type")
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = _get(body, name, (int, float), None)
    return None if value is None else float(value)


# -- clock, config, fixtures ---------------------------------------------------------------


@endpoint
def clock(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    if request.method == "POST":
        if (seconds := _number(body, "advance_seconds")) is not None:
            state.clock.advance(seconds)
        if (at := _number(body, "freeze_at")) is not None:
            state.clock.freeze(at)
        elif _get(body, "freeze", bool, False):
            state.clock.freeze()
        if _get(body, "unfreeze", bool, False):
            state.clock.unfreeze()
        if (offset := _number(body, "offset_seconds")) is not None:
            state.clock.set_offset(offset)
    return state.clock.describe()


@endpoint
async def config(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    if request.method == "PATCH":
        new = state.config.updated(body)
        check_settings(new)
        if needs_handshake(state.config, new):
            # Meta verifies the callback before saving it; outside the lock, on the event loop.
            assert new.webhook_url is not None and new.webhook_verify_token is not None
            problem = await averify_endpoint(
                new.webhook_url, new.webhook_verify_token, new.webhook_timeout_seconds
            )
            if problem is not None:
                raise ControlError(f"webhook verification failed: {new.webhook_url} {problem}")
        with state.lock:
            state.config = state.config.updated(body)
        if not state.config.webhook_reorder:
            state.webhooks.flush()  # switching reordering off releases what it held
    return state.config.as_dict()


@endpoint
def fixtures(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.fixtures()


@endpoint
def reset(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.reset(seed=_get(body, "seed", bool, True))


# -- objects and tokens -----------------------------------------------------------------------


@endpoint
def create_object(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    kind = request.path_params["kind"]
    if kind == "apps":
        return state.create_app(
            _get(body, "name", str, "Sandbox App"),
            require_app_secret=_get(body, "require_app_secret", bool, False),
            business_id=_get(body, "business_id", str, None),
        )
    if kind == "businesses":
        return state.create_business(
            _get(body, "name", str, "Sandbox Business"),
            requires_expiring_tokens=_get(body, "requires_expiring_tokens", bool, False),
        )
    if kind == "system_users":
        return state.create_system_user(
            _get(body, "business_id", str),
            _get(body, "name", str, "System User"),
            role=_get(body, "role", str, "ADMIN"),
        )
    if kind == "wabas":
        return state.create_waba(_get(body, "business_id", str), _get(body, "name", str, "WABA"))
    if kind == "phone_numbers":
        return state.create_phone_number(
            _get(body, "waba_id", str),
            _get(body, "display_phone_number", str, "15550009999"),
        )
    raise ControlError(f"unknown object kind {kind!r}", 404)


@endpoint
def create_code(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    code = state.create_code(
        app_id=_get(body, "app_id", str, None),
        business_id=_get(body, "business_id", str, None),
        redirect_uri=_get(body, "redirect_uri", str, None),
    )
    return {"code": code}


@endpoint
def create_token(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.create_token(
        _get(body, "kind", str),
        app_id=_get(body, "app_id", str, None),
        system_user_id=_get(body, "system_user_id", str, None),
        business_id=_get(body, "business_id", str, None),
        scopes=_get(body, "scopes", list, None),
        waba_ids=_get(body, "waba_ids", list, None),
        expires_in=_get(body, "expires_in", int, None),
        expires_at=_get(body, "expires_at", int, None),
    )


@endpoint
def revoke_token(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.revoke_token(_get(body, "value", str), _get(body, "subcode", int, None))


@endpoint
def expire_token(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.expire_token(_get(body, "value", str))


@endpoint
def oauth2_grant(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    client_id = _get(body, "client_id", str, "sandbox-client")
    if client_id not in state.providers.clients:
        raise KeyError("unknown OAuth2 client")
    with state.lock:
        return state.providers.new_grant(
            client_id, state.clock.now(), state.config.oauth2_access_token_lifetime
        )


# -- faults and logs ---------------------------------------------------------------------------


@endpoint
def faults(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    if request.method == "POST":
        return state.inject_fault(**body)
    if request.method == "DELETE":
        state.clear_faults()
    with state.lock:
        return {"data": state.faults.list()}


@endpoint
def delete_fault(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    with state.lock:
        if not state.faults.remove(request.path_params["fault_id"]):
            raise KeyError("unknown fault")
    return {"success": True}


@endpoint
def calls(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        state.clear_logs()
    return {"data": state.calls(request.query_params.get("endpoint"))}


@endpoint
def messages(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        state.clear_logs()
    return {"data": state.messages()}


@endpoint
def media(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return {"data": state.media()}


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


def routes() -> list[Route]:
    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/fixtures", fixtures, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/config", config, methods=["GET", "PATCH"]),
        Route("/objects/{kind}", create_object, methods=["POST"]),
        Route("/codes", create_code, methods=["POST"]),
        Route("/tokens", create_token, methods=["POST"]),
        Route("/tokens/revoke", revoke_token, methods=["POST"]),
        Route("/tokens/expire", expire_token, methods=["POST"]),
        Route("/oauth2/grants", oauth2_grant, methods=["POST"]),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/faults/{fault_id:int}", delete_fault, methods=["DELETE"]),
        Route("/calls", calls, methods=["GET", "DELETE"]),
        Route("/messages", messages, methods=["GET", "DELETE"]),
        Route("/media", media, methods=["GET"]),
    ]
