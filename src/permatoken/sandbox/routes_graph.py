"""Graph nodes and edges: ``/me``, phone numbers, WABAs and system-user token minting (3.3, 3.8)."""

from __future__ import annotations

from typing import Any

from permatoken.sandbox.auth import authenticate
from permatoken.sandbox.errors import GraphAPIError, unknown_object
from permatoken.sandbox.models import KNOWN_SCOPES, PhoneNumber, Token, Waba
from permatoken.sandbox.request import SandboxRequest, select_fields

MANAGEMENT = ("whatsapp_business_management",)


def me(req: SandboxRequest) -> dict[str, Any]:
    token = authenticate(req, missing_code=2500)
    name = "Sandbox Developer"
    if token.system_user_id is not None:
        name = req.state.system_users[token.system_user_id].name
    elif token.kind == "app":
        name = req.state.apps[token.app_id].name
    record: dict[str, Any] = {"id": token.user_id, "name": name}
    wanted = req.fields()
    if wanted is not None and "client_business_id" in wanted and token.kind == "bisu":
        # Business tokens name the client business (FLB doc, S3).
        record["client_business_id"] = token.business_id
    return select_fields(record, wanted)


def phone_number_record(phone: PhoneNumber) -> dict[str, Any]:
    return {
        "verified_name": phone.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": phone.display_phone_number,
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "webhook_configuration": {"application": "https://sandbox.invalid/webhooks"},
        "id": phone.id,
    }


def reach_waba(req: SandboxRequest, token: Token, waba: Waba, object_id: str) -> None:
    """Objects a token cannot reach look exactly like objects that do not exist."""
    if waba.id not in token.waba_ids:
        raise unknown_object(object_id)
    req.waba_id = waba.id
    req.waba_active = any(p.waba_id == waba.id for p in req.state.phone_numbers.values())


def get_phone_number(req: SandboxRequest) -> dict[str, Any]:
    token = authenticate(req, scopes=MANAGEMENT)
    phone = req.state.phone_numbers[req.args[0]]
    reach_waba(req, token, req.state.wabas[phone.waba_id], phone.id)
    return select_fields(phone_number_record(phone), req.fields())


def get_waba(req: SandboxRequest) -> dict[str, Any]:
    token = authenticate(req, scopes=MANAGEMENT)
    waba = req.state.wabas[req.args[0]]
    reach_waba(req, token, waba, waba.id)
    req.state.usage.record_waba_call(token.app_id, waba.id, req.waba_active, req.now, req.config)
    record = {
        "id": waba.id,
        "name": waba.name,
        "currency": "USD",
        "timezone_id": "1",
        "message_template_namespace": f"sandbox_{waba.id[-6:]}",
    }
    return select_fields(record, req.fields())


def list_phone_numbers(req: SandboxRequest) -> dict[str, Any]:
    token = authenticate(req, scopes=MANAGEMENT)
    waba = req.state.wabas.get(req.args[0])
    if waba is None:
        raise unknown_object(req.args[0])
    reach_waba(req, token, waba, waba.id)
    req.state.usage.record_waba_call(token.app_id, waba.id, req.waba_active, req.now, req.config)
    wanted = req.fields()
    data = [
        select_fields(phone_number_record(p), wanted)
        for p in req.state.phone_numbers.values()
        if p.waba_id == waba.id
    ]
    cursor = "QVFIU" + waba.id
    return {"data": data, "paging": {"cursors": {"before": cursor, "after": cursor}}}


def get_unknown(req: SandboxRequest) -> dict[str, Any]:
    authenticate(req)
    raise unknown_object(req.args[0])


def _same_business_admin(req: SandboxRequest, caller: Token, business_id: str) -> None:
    if caller.kind == "app" or caller.business_id != business_id:
        raise GraphAPIError(200, "(#200) Permissions error", status=req.auth_status())


def install_app(req: SandboxRequest) -> bool:
    """``POST /{system-user-id}/applications``: returns a bare ``true`` (S2)."""
    caller = authenticate(req)
    user = req.state.system_users[req.args[0]]
    _same_business_admin(req, caller, user.business_id)
    app_id = req.require("business_app")
    if app_id not in req.state.apps:
        raise GraphAPIError(100, "(#100) Param business_app must be a valid app ID")
    user.apps.add(app_id)
    return True


def mint_system_user_token(req: SandboxRequest) -> dict[str, Any]:
    """``POST /{system-user-id}/access_tokens``: needs appsecret_proof over the caller's token."""
    caller = authenticate(req, proof_required=True)
    user = req.state.system_users[req.args[0]]
    _same_business_admin(req, caller, user.business_id)
    app_id = req.require("business_app")
    if app_id not in req.state.apps:
        raise GraphAPIError(100, "(#100) Param business_app must be a valid app ID")
    if app_id not in user.apps:
        raise GraphAPIError(
            100, "(#100) The app must be installed for this system user (POST /applications)"
        )
    scopes = [s.strip() for s in req.require("scope").split(",") if s.strip()]
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown or not scopes:
        raise GraphAPIError(100, f"(#100) Invalid scope: {', '.join(unknown) or '(empty)'}")
    sixty_days = bool(req.flag("set_token_expires_in_60_days"))
    business = req.state.businesses[user.business_id]
    if not sixty_days and business.requires_expiring_tokens:
        raise GraphAPIError(req.config.must_expire_error_code, req.config.must_expire_error_message)
    kind = "system_user_60d" if sixty_days else "system_user"
    if user.role == "INTEGRATION" and not sixty_days:
        kind = "bisu"
    token = req.state.issue(kind, app_id=app_id, system_user_id=user.id, scopes=scopes)
    answer: dict[str, Any] = {"access_token": token.value}
    if req.config.mint_returns_expires_in and token.expires_at:
        answer["expires_in"] = token.expires_at - int(req.now)
    return answer
