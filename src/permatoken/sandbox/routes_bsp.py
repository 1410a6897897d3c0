"""Stand-ins for non-Meta providers: a BSP ``/v1/users/login`` and a generic OAuth2 server.

Their errors are their own, not Graph's: On-Premises style ``{"errors": [...]}`` for the login
API (reference 7) and RFC 6749 section 5.2 bodies for the OAuth2 token endpoint.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from permatoken.sandbox.request import Reply, SandboxRequest

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="WhatsApp"'}


def _access_denied(details: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"errors": [{"code": 1005, "title": "Access denied", "details": details}]}
    return Reply(body, 401, headers or {"WWW-Authenticate": 'Bearer realm="WhatsApp"'})


def _basic(req: SandboxRequest) -> tuple[str, str] | None:
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _bearer(req: SandboxRequest) -> str | None:
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _expires_after(unix: float) -> str:
    # "YYYY-MM-DD HH:MM:SS+00:00", not epoch (reference 7).
    return dt.datetime.fromtimestamp(int(unix), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def login(req: SandboxRequest) -> Reply:
    credentials = _basic(req)
    if credentials is None:
        return _access_denied("Missing or malformed Basic credentials", BASIC_CHALLENGE)
    store = req.state.providers
    account = store.login(*credentials, req.now, req.config.login_token_lifetime)
    if account is None or account.token is None:
        return _access_denied("Invalid credentials", BASIC_CHALLENGE)
    body = req.json_body if isinstance(req.json_body, dict) else {}
    new_password = body.get("new_password")
    if new_password is not None:
        if not isinstance(new_password, str) or len(new_password) < 8:
            return Reply(
                {
                    "errors": [
                        {
                            "code": 1008,
                            "title": "Invalid parameter",
                            "details": "new_password must be 8+ characters",
                        }
                    ]
                },
                400,
            )
        account.password = new_password
    req.raw_token = account.token
    return Reply(
        {"users": [{"token": account.token, "expires_after": _expires_after(account.expires_at)}]}
    )


def logout(req: SandboxRequest) -> Reply:
    token = _bearer(req)
    req.raw_token = token
    if token is None or not req.state.providers.logout(token):
        return _access_denied("Invalid or expired token")
    return Reply({})


def health(req: SandboxRequest) -> Reply:
    """A protected harmless call: accepts login tokens and OAuth2 access tokens."""
    token = _bearer(req)
    req.raw_token = token
    store = req.state.providers
    if token is None or not (
        store.login_token_valid(token, req.now) or store.access_token_active(token, req.now)
    ):
        return _access_denied("Invalid or expired token")
    return Reply({"health": {"gateway_status": "connected"}, "meta": {"api_status": "stable"}})


def _oauth_error(error: str, description: str, status: int = 400) -> Reply:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
    return Reply({"error": error, "error_description": description}, status, headers)


def _client(req: SandboxRequest) -> str | Reply:
    credentials = _basic(req)
    if credentials is None:
        client_id, secret = req.params.get("client_id"), req.params.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            return _oauth_error("invalid_client", "Client authentication failed", 401)
        credentials = (client_id, secret)
    if not req.state.providers.client_ok(*credentials):
        return _oauth_error("invalid_client", "Client authentication failed", 401)
    return credentials[0]


def token(req: SandboxRequest) -> Reply:
    client = _client(req)
    if isinstance(client, Reply):
        return client
    grant_type = req.params.get("grant_type")
    store, lifetime = req.state.providers, req.config.oauth2_access_token_lifetime
    if grant_type == "client_credentials":
        issued = store.new_grant(client, req.now, lifetime)
        issued.pop("refresh_token")  # RFC 6749 4.4.3: no refresh token for this grant
        return Reply(issued, headers={"Cache-Control": "no-store"})
    if grant_type == "refresh_token":
        refresh = req.params.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            return _oauth_error("invalid_request", "refresh_token is required")
        req.raw_token = refresh
        try:
            issued = store.refresh(client, refresh, req.now, lifetime)
        except ValueError as exc:
            return _oauth_error("invalid_grant", str(exc))
        return Reply(issued, headers={"Cache-Control": "no-store"})
    if grant_type is None:
        return _oauth_error("invalid_request", "grant_type is required")
    return _oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")


def introspect(req: SandboxRequest) -> Reply:
    """RFC 7662 token introspection, so callers can check a token without a resource call."""
    client = _client(req)
    if isinstance(client, Reply):
        return client
    value = req.params.get("token")
    if not isinstance(value, str) or not value:
        return _oauth_error("invalid_request", "token is required")
    req.raw_token = value
    active = req.state.providers.access_token_active(value, req.now)
    answer: dict[str, Any] = {"active": active}
    if active:
        answer["client_id"] = client
    return Reply(answer)
