"""``/oauth/access_token``, ``/oauth/revoke`` and ``/debug_token`` (reference 3.1-3.6, 8.3-8.6)."""

from __future__ import annotations

import hmac
from typing import Any

from permatoken.sandbox.auth import authenticate, lookup, token_problem
from permatoken.sandbox.errors import (
    CANNOT_PARSE,
    GraphAPIError,
    bad_app_id,
    bad_client_secret,
    foreign_app,
)
from permatoken.sandbox.models import App, Token
from permatoken.sandbox.request import SandboxRequest


def _client(req: SandboxRequest) -> App:
    """Check ``client_id`` and ``client_secret`` the way Meta orders them: app first."""
    client_id = req.require("client_id")
    app = req.state.apps.get(client_id)
    if app is None:
        raise bad_app_id()
    secret = req.require("client_secret")
    if not hmac.compare_digest(app.secret, secret):
        raise bad_client_secret()
    return app


def access_token(req: SandboxRequest) -> dict[str, Any]:
    grant = req.text("grant_type", required=False)
    if grant is None and req.params.get("code") is not None:
        return _exchange_code(req)
    if grant is None:
        raise GraphAPIError(100, "(#100) Missing grant_type parameter")
    if grant == "client_credentials":
        app = _client(req)
        token = req.state.issue("app", app_id=app.id)
        return {"access_token": token.value, "token_type": "bearer"}
    if grant == "fb_exchange_token":
        return _exchange_token(req)
    raise GraphAPIError(100, f"(#100) Unsupported grant_type: {grant}")


def _exchange_code(req: SandboxRequest) -> dict[str, Any]:
    app = _client(req)
    value = req.require("code")
    code = req.state.codes.get(value)
    if code is None or code.app_id != app.id:
        raise GraphAPIError(100, "Invalid verification code format.")
    if code.used:
        raise GraphAPIError(100, "This authorization code has been used.", subcode=36009)
    if req.now - code.created_at > req.config.code_ttl_seconds:
        raise GraphAPIError(100, "This authorization code has expired.", subcode=36007)
    redirect_uri = req.text("redirect_uri", required=False)
    if redirect_uri is not None and redirect_uri != code.redirect_uri:
        raise GraphAPIError(
            100,
            "Error validating verification code. Please make sure your redirect_uri is identical "
            "to the one you used in the OAuth dialog request",
            subcode=36008,
        )
    code.used = True
    token = req.state.issue("bisu", app_id=app.id, business_id=code.business_id)
    answer: dict[str, Any] = {"access_token": token.value, "token_type": "bearer"}
    if req.config.code_exchange_returns_expires_in and token.expires_at:
        answer["expires_in"] = token.expires_at - int(req.now)
    return answer


def _exchange_token(req: SandboxRequest) -> dict[str, Any]:
    app = _client(req)
    value = req.require("fb_exchange_token")
    sixty_days = req.flag("set_token_expires_in_60_days")
    old = lookup(req, value)
    if old is None:
        raise GraphAPIError(190, CANNOT_PARSE)
    if old.app_id != app.id:
        raise foreign_app()
    problem = token_problem(old, req.now)
    if problem is not None:
        # "You can not use an expired token to request a long-lived token" (S4): 190/463.
        raise problem
    state = req.state
    if old.kind in ("dashboard", "user_short", "user_long"):
        new = state.issue(
            "user_long",
            app_id=app.id,
            business_id=old.business_id,
            scopes=old.scopes,
            waba_ids=old.waba_ids,
            user_id=old.user_id,
        )
    elif old.kind in ("system_user_60d", "system_user", "bisu"):
        if not sixty_days:
            raise GraphAPIError(
                100,
                "(#100) System user access tokens are refreshed with "
                "set_token_expires_in_60_days=true",
            )
        if old.expires_at == 0 and req.config.exchange_non_expiring_system_user != "convert":
            raise GraphAPIError(
                100, "(#100) Only expiring system user access tokens can be refreshed"
            )
        # The old token is left alone: it works until its own expiry (S2).
        new = state.issue(
            "system_user_60d" if old.kind != "bisu" else "bisu",
            app_id=app.id,
            system_user_id=old.system_user_id,
            scopes=old.scopes,
            waba_ids=old.waba_ids,
            expires_in=req.config.long_lived_lifetime,
        )
    else:
        raise GraphAPIError(100, "(#100) An app access token cannot be exchanged")
    return {
        "access_token": new.value,
        "token_type": "bearer",
        "expires_in": new.expires_at - int(req.now),
    }


def revoke(req: SandboxRequest) -> Any:
    app = _client(req)
    caller = authenticate(req)
    target_value = req.require("revoke_token")
    target = req.state.tokens.get(target_value)
    if target is None:
        raise GraphAPIError(190, CANNOT_PARSE)
    # client_id, both tokens' apps and client_secret "must all be the same" (S2).
    if caller.app_id != app.id or target.app_id != app.id:
        raise GraphAPIError(
            100, "(#100) client_id, access_token and revoke_token must belong to the same app"
        )
    if not target.revoked:
        target.revoked = True
        target.invalid_subcode = req.config.revoked_subcode
    return {"success": "true" if req.config.revoke_success_as_string else True}


def debug_token(req: SandboxRequest) -> dict[str, Any]:
    caller = authenticate(req)
    value = req.require("input_token")
    target = lookup(req, value)
    if target is None:
        if req.config.debug_token_unparseable == "top_level":  # noqa: S105
            raise GraphAPIError(190, CANNOT_PARSE)
        # What Meta answers for a token it cannot parse: no app, no type, just the error.
        error = {"code": 190, "message": CANNOT_PARSE}
        return {"data": {"error": error, "is_valid": False, "scopes": []}}
    if target.app_id != caller.app_id:
        raise foreign_app()
    return {"data": describe(req, target)}


def describe(req: SandboxRequest, token: Token) -> dict[str, Any]:
    """The ``data`` object of ``debug_token`` (reference 3.6)."""
    app = req.state.apps[token.app_id]
    data: dict[str, Any] = {"app_id": app.id, "type": token.debug_type, "application": app.name}
    if token.kind != "app":
        data["data_access_expires_at"] = token.data_access_expires_at
    data["expires_at"] = token.expires_at
    problem = token_problem(token, req.now)
    data["is_valid"] = problem is None
    data["issued_at"] = token.issued_at
    data["scopes"] = list(token.scopes)
    if token.kind != "app":
        data["granular_scopes"] = token.granular_scopes()
        data["user_id"] = token.user_id
    if problem is not None:
        # Inside debug_token the field is ``subcode`` and there is no ``type`` (reference 10).
        error: dict[str, Any] = {"code": problem.code, "message": problem.message}
        if problem.subcode is not None:
            error["subcode"] = problem.subcode
        data["error"] = error
    return data
