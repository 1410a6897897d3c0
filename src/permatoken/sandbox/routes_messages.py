"""``POST /{phone-number-id}/messages``: the Cloud API send, its limits and its log (3.7)."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from permatoken.sandbox.auth import authenticate
from permatoken.sandbox.errors import GraphAPIError, unknown_object
from permatoken.sandbox.models import PhoneNumber, Token
from permatoken.sandbox.request import SandboxRequest
from permatoken.sandbox.signup import send_refusal

MESSAGING = ("whatsapp_business_messaging",)
MAX_TEXT = 4096
#: Types the sandbox accepts with only a "the object is there" check.
OTHER_TYPES = frozenset(
    {
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "reaction",
    }
)


def _invalid(details: str) -> GraphAPIError:
    # WhatsApp parameter errors are code 100 with the detail in error_data (reference 5.1).
    return GraphAPIError(
        100,
        "(#100) Invalid parameter",
        error_data={"messaging_product": "whatsapp", "details": details},
    )


def new_wamid() -> str:
    return (
        "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(24)).decode()
    )


def sender(req: SandboxRequest) -> tuple[Token, PhoneNumber]:
    """The token and the business number of a call on ``/{phone-number-id}/…`` (sends, media)."""
    token = authenticate(req, scopes=MESSAGING)
    phone = req.state.phone_numbers.get(req.args[0])
    if phone is None:
        raise unknown_object(req.args[0], "post")
    req.waba_id = phone.waba_id
    req.waba_active = True
    if phone.waba_id not in token.waba_ids:
        raise GraphAPIError(
            200,
            "(#200) You do not have the necessary permissions required to send messages "
            "on behalf of this WhatsApp Business Account",
            status=req.auth_status(),
        )
    return token, phone


def send_message(req: SandboxRequest) -> dict[str, Any]:
    token, phone = sender(req)
    refusal = send_refusal(req.state, req.state.wabas[phone.waba_id])
    if refusal is not None:  # a disabled or offboarded WABA (account_update events)
        raise refusal
    body = req.json_object()
    if body.get("messaging_product") != "whatsapp":
        raise _invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    recipient = body.get("to", body.get("recipient"))
    if recipient is None or recipient == "":
        raise _invalid("The parameter to is required.")
    if not isinstance(recipient, str | int) or isinstance(recipient, bool):
        raise _invalid("Param to must be a string.")
    recipient = str(recipient)
    kind = body.get("type", "text")
    if not isinstance(kind, str):
        raise _invalid("Param type must be a string.")
    content = body.get(kind)
    if isinstance(content, str) and content.lstrip().startswith("{"):
        # Form-encoded sends carry objects as JSON text, which Graph decodes (the FB SDKs do this).
        try:
            content = json.loads(content)
        except ValueError:
            pass
    _validate_content(kind, content)
    req.state.usage.record_send(phone.id, recipient, req.now, req.config)

    wamid = new_wamid()
    if "to" in body:
        wa_id = "".join(ch for ch in recipient if ch.isdigit())
        contact: dict[str, Any] = {"input": recipient, "wa_id": wa_id}
    else:
        contact = {"input": recipient, "user_id": recipient}
    message: dict[str, Any] = {"id": wamid}
    if kind == "template" and req.config.template_message_status is not None:
        message["message_status"] = req.config.template_message_status
    req.state.record_message(
        {
            "id": wamid,
            "at": req.now,
            "phone_number_id": phone.id,
            "waba_id": phone.waba_id,
            "to": recipient,
            "type": kind,
            "content": content,
            "app_id": token.app_id,
        }
    )
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}


def _validate_content(kind: str, content: Any) -> None:
    if kind == "text":
        if not isinstance(content, dict):
            raise _invalid("The parameter text is required.")
        text = content.get("body")
        if not isinstance(text, str) or not text:
            raise _invalid("The parameter text['body'] is required.")
        if len(text) > MAX_TEXT:
            raise _invalid(f"Param text['body'] must be at most {MAX_TEXT} characters long.")
        if "preview_url" in content and not isinstance(content["preview_url"], bool):
            raise _invalid("Param text['preview_url'] must be a boolean.")
    elif kind == "template":
        if not isinstance(content, dict):
            raise _invalid("The parameter template is required.")
        if not isinstance(content.get("name"), str) or not content["name"]:
            raise _invalid("The parameter template['name'] is required.")
        language = content.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            raise _invalid("The parameter template['language']['code'] is required.")
    elif kind in OTHER_TYPES:
        if not isinstance(content, dict):
            raise _invalid(f"The parameter {kind} is required.")
    else:
        raise _invalid(f"Unsupported message type: {kind}.")
