"""Which endpoint a path is, and which handler answers it.

Endpoint names are templates (``"POST /{phone-number-id}/messages"``): they key the calls log,
fault injection and the per-endpoint HTTP status overrides. Graph paths may carry any
``v<major>.<minor>`` prefix or none; the BSP stand-ins live on unversioned paths only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from permatoken.sandbox import (
    routes_bsp,
    routes_graph,
    routes_media,
    routes_messages,
    routes_oauth,
    routes_subscriptions,
)
from permatoken.sandbox.auth import authenticate
from permatoken.sandbox.errors import GraphAPIError, unknown_object, unknown_path

if TYPE_CHECKING:
    from permatoken.sandbox.request import SandboxRequest
    from permatoken.sandbox.state import SandboxState

Handler = Callable[["SandboxRequest"], Any]
VERSION = re.compile(r"^/v\d+\.\d+(?=/|$)")

#: Fixed paths: (method, path) -> (endpoint name, handler).
FIXED: dict[tuple[str, str], tuple[str, Handler]] = {
    ("GET", "/oauth/access_token"): ("GET /oauth/access_token", routes_oauth.access_token),
    ("POST", "/oauth/access_token"): ("GET /oauth/access_token", routes_oauth.access_token),
    ("GET", "/oauth/revoke"): ("GET /oauth/revoke", routes_oauth.revoke),
    ("GET", "/debug_token"): ("GET /debug_token", routes_oauth.debug_token),
    ("GET", "/me"): ("GET /me", routes_graph.me),
}
#: Unversioned non-Meta paths.
PROVIDERS: dict[tuple[str, str], tuple[str, Handler]] = {
    ("POST", "/v1/users/login"): ("POST /v1/users/login", routes_bsp.login),
    ("POST", "/v1/users/logout"): ("POST /v1/users/logout", routes_bsp.logout),
    ("GET", "/v1/health"): ("GET /v1/health", routes_bsp.health),
    ("POST", "/oauth2/token"): ("POST /oauth2/token", routes_bsp.token),
    ("POST", "/oauth2/introspect"): ("POST /oauth2/introspect", routes_bsp.introspect),
}

SUBSCRIBED_APPS = {f"{m} /{{waba-id}}/subscribed_apps" for m in ("GET", "POST", "DELETE")}
ENDPOINTS = sorted(
    {name for name, _ in FIXED.values()}
    | {name for name, _ in PROVIDERS.values()}
    | {
        "GET /{phone-number-id}",
        "GET /{waba-id}",
        "GET /{object-id}",
        "GET /{waba-id}/phone_numbers",
        "POST /{phone-number-id}/messages",
        routes_media.ENDPOINT,
        "POST /{system-user-id}/access_tokens",
        "POST /{system-user-id}/applications",
        *SUBSCRIBED_APPS,
    }
)


def strip_version(path: str) -> str:
    return VERSION.sub("", path, count=1) or "/"


def resolve(method: str, raw_path: str, state: SandboxState) -> tuple[str, Handler, list[str]]:
    """Map a request to ``(endpoint, handler, path args)``; call under the state lock."""
    if (method, raw_path) in PROVIDERS:
        name, handler = PROVIDERS[(method, raw_path)]
        return name, handler, []
    path = strip_version(raw_path)
    if (method, path) in FIXED:
        name, handler = FIXED[(method, path)]
        return name, handler, []
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] in {"oauth", "debug_token", "me"}:
        return f"{method} {path}", _fails(unknown_path(path)), []
    object_id, rest = parts[0], parts[1:]
    if not rest:
        if method != "GET":
            return f"{method} /{{object-id}}", _unsupported(object_id, method), [object_id]
        if object_id in state.phone_numbers:
            return "GET /{phone-number-id}", routes_graph.get_phone_number, [object_id]
        if object_id in state.wabas:
            return "GET /{waba-id}", routes_graph.get_waba, [object_id]
        return "GET /{object-id}", routes_graph.get_unknown, [object_id]
    edge = (method, rest[0]) if len(rest) == 1 else None
    if edge == ("POST", "messages"):
        return "POST /{phone-number-id}/messages", routes_messages.send_message, [object_id]
    if edge == ("POST", "media") and object_id in state.phone_numbers:
        return routes_media.ENDPOINT, routes_media.upload_media, [object_id]
    if edge == ("GET", "phone_numbers"):
        return "GET /{waba-id}/phone_numbers", routes_graph.list_phone_numbers, [object_id]
    if edge in {("POST", "access_tokens"), ("POST", "applications")}:
        assert edge is not None
        name = f"POST /{{system-user-id}}/{edge[1]}"
        if object_id not in state.system_users:
            return name, _unsupported(object_id, method), [object_id]
        if edge[1] == "access_tokens":
            return name, routes_graph.mint_system_user_token, [object_id]
        return name, routes_graph.install_app, [object_id]
    if len(rest) == 1 and rest[0] == "subscribed_apps" and method in ("GET", "POST", "DELETE"):
        name = f"{method} /{{waba-id}}/subscribed_apps"
        return name, routes_subscriptions.subscribed_apps, [object_id]
    known = object_id in state.phone_numbers or object_id in state.wabas
    if known or object_id in state.system_users:
        if len(rest) == 1 and rest[0] in {"messages", "phone_numbers", "access_tokens"}:
            return f"{method} {path}", _unsupported(object_id, method), [object_id]
        return f"{method} {path}", _fails(unknown_path("/" + "/".join(rest))), [object_id]
    return f"{method} /{{object-id}}/{'/'.join(rest)}", _unsupported(object_id, method), [object_id]


def _fails(error: GraphAPIError) -> Handler:
    def handler(req: SandboxRequest) -> Any:
        raise error

    return handler


def _unsupported(object_id: str, method: str) -> Handler:
    def handler(req: SandboxRequest) -> Any:
        authenticate(req)  # Meta checks the token before it admits the object is unknown
        raise unknown_object(object_id, method.lower())

    return handler
