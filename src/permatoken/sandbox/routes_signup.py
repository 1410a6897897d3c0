"""Control API for Embedded Signup, client-business actions and the webhook outbox.

Each route is a thin layer over a :class:`SandboxState` method (``signup.py`` does the work); the
answers are the same dicts. Webhook settings themselves go through ``PATCH /_sandbox/config``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from permatoken.sandbox.control import ControlError, _get, endpoint
from permatoken.sandbox.state import SandboxState


@endpoint
def embedded_signup(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    name = _get(body, "business_name", str, None)
    if name is not None and not 0 < len(name.strip()) <= 256:
        raise ControlError("business_name must be 1 to 256 characters")
    return state.embedded_signup(app_id=_get(body, "app_id", str, None), business_name=name)


@endpoint
def uninstall(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    business_id = request.path_params["business_id"]
    return state.uninstall_app(business_id, _get(body, "app_id", str, None))


@endpoint
def install(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    business_id = request.path_params["business_id"]
    return state.install_app(business_id, _get(body, "app_id", str, None))


@endpoint
def waba_event(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.account_event(
        request.path_params["waba_id"],
        _get(body, "event", str),
        app_id=_get(body, "app_id", str, None),
        ban_state=_get(body, "ban_state", str, None),
    )


@endpoint
def deauthorize(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return state.deauthorize(_get(body, "user_id", str), _get(body, "app_id", str, None))


@endpoint
def webhooks(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return {"data": state.webhook_deliveries()}


@endpoint
def flush_webhooks(request: Request, state: SandboxState, body: dict[str, Any]) -> Any:
    return {"data": state.webhooks.flush()}


def routes() -> list[Route]:
    return [
        Route("/embedded_signup", embedded_signup, methods=["POST"]),
        Route("/businesses/{business_id}/uninstall", uninstall, methods=["POST"]),
        Route("/businesses/{business_id}/install", install, methods=["POST"]),
        Route("/wabas/{waba_id}/events", waba_event, methods=["POST"]),
        Route("/deauthorize", deauthorize, methods=["POST"]),
        Route("/webhooks", webhooks, methods=["GET"]),
        Route("/webhooks/flush", flush_webhooks, methods=["POST"]),
    ]
