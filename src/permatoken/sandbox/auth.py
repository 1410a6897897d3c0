"""Token checks in Meta's order, and ``appsecret_proof`` in both forms (reference 4 and 8.1).

Order on every resource call: parse the token, then revoked/invalid, then expired, then the
app's rate budget, then scope. ``{app-id}|{app-secret}`` is accepted as an app token, as Graph does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from permatoken.sandbox.errors import (
    CANNOT_PARSE,
    GraphAPIError,
    expired_message,
    subcode_message,
)
from permatoken.sandbox.models import App, Token
from permatoken.sandbox.request import SandboxRequest

PROOF_MISSING = "API calls from the server require an appsecret_proof argument"
PROOF_INVALID = "Invalid appsecret_proof provided in the API argument"


def extract_token(req: SandboxRequest) -> str | None:
    header = req.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    param = req.params.get("access_token")
    return param if isinstance(param, str) and param else None


def lookup(req: SandboxRequest, value: str) -> Token | None:
    """The token record for ``value``; app-token literals get a transient record."""
    token = req.state.tokens.get(value)
    if token is not None:
        return token
    app_id, sep, secret = value.partition("|")
    app = req.state.apps.get(app_id)
    if sep and app is not None and hmac.compare_digest(app.secret, secret):
        return Token(value, "app", app.id, app.id, 0, 0, 0, [], [], app.business_id)
    return None


def token_problem(token: Token, now: float) -> GraphAPIError | None:
    """Why ``token`` cannot be used right now (revoked first, then expired), or ``None``."""
    if token.revoked:
        return GraphAPIError(
            190, subcode_message(token.invalid_subcode, token.app_id), subcode=token.invalid_subcode
        )
    if token.is_expired(now):
        return GraphAPIError(190, expired_message(token.expires_at, now), subcode=463)
    return None


def authenticate(
    req: SandboxRequest,
    *,
    scopes: Iterable[str] = (),
    proof_required: bool = False,
    missing_code: int = 104,
) -> Token:
    status = req.auth_status()
    raw = extract_token(req)
    if raw is None:
        message = (
            "An active access token must be used to query information about the current user."
            if missing_code == 2500
            else "An access token is required to request this resource."
        )
        raise GraphAPIError(missing_code, message, status=status, auth_kind="invalid_request")
    req.raw_token = raw
    token = lookup(req, raw)
    if token is None:
        raise GraphAPIError(190, CANNOT_PARSE, status=status)
    problem = token_problem(token, req.now)
    if problem is not None:
        problem.status = status
        raise problem
    app = req.state.apps[token.app_id]
    check_proof(req, raw, app, required=proof_required or app.require_app_secret)
    req.token, req.app_id = token, app.id
    req.state.usage.record_app_call(app.id, req.now, req.config)
    for scope in scopes:
        if scope not in token.scopes:
            raise GraphAPIError(
                10, "(#10) Application does not have permission for this action", status=status
            )
    return token


def check_proof(req: SandboxRequest, token_value: str, app: App, *, required: bool) -> None:
    proof = req.params.get("appsecret_proof")
    if proof is None or proof == "":
        if required:
            raise GraphAPIError(100, PROOF_MISSING, status=req.auth_status())
        return
    if not isinstance(proof, str):
        raise GraphAPIError(100, PROOF_INVALID, status=req.auth_status())
    message = token_value
    stamp = req.params.get("appsecret_time")
    if stamp is not None and stamp != "":
        stamp_int = req.integer("appsecret_time")
        assert stamp_int is not None
        # Time-stamped proofs expire after five minutes (Login Security doc, S18).
        if abs(req.now - stamp_int) > req.config.appsecret_time_window:
            raise GraphAPIError(100, PROOF_INVALID, status=req.auth_status())
        message = f"{token_value}|{stamp_int}"
    expected = appsecret_proof(app.secret, message)
    if not hmac.compare_digest(expected, proof.lower()):
        raise GraphAPIError(100, PROOF_INVALID, status=req.auth_status())


def appsecret_proof(app_secret: str, token: str, at: int | None = None) -> str:
    """Compute a proof: plain, or time-stamped when ``at`` (unix seconds) is given."""
    message = token if at is None else f"{token}|{at}"
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
