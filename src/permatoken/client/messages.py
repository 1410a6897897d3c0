"""WhatsApp Cloud API message bodies and answers (pure; reference 3.7 and 3.8)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import UnexpectedAnswerError
from .models import PhoneNumberInfo, SentMessage

__all__ = [
    "MEDIA_KINDS",
    "media_payload",
    "parse_phone_number",
    "parse_sent",
    "reaction_payload",
    "read_payload",
    "template_payload",
    "text_payload",
]

MEDIA_KINDS = frozenset({"image", "document", "audio", "video", "sticker"})
_CAPTIONED = frozenset({"image", "document", "video"})


def _envelope(
    to: str, kind: str, content: Mapping[str, Any], reply_to: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: dict(content),
    }
    if reply_to:
        body["context"] = {"message_id": reply_to}
    return body


def text_payload(
    to: str, text: str, *, preview_url: bool = False, reply_to: str | None = None
) -> dict[str, Any]:
    return _envelope(to, "text", {"preview_url": preview_url, "body": text}, reply_to)


def template_payload(
    to: str,
    name: str,
    language: str = "en_US",
    components: Sequence[Mapping[str, Any]] | None = None,
    *,
    reply_to: str | None = None,
) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = [dict(c) for c in components]
    return _envelope(to, "template", template, reply_to)


def media_payload(
    to: str,
    kind: str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    if kind not in MEDIA_KINDS:
        raise ValueError(
            f"media kind must be one of {', '.join(sorted(MEDIA_KINDS))}, not {kind!r}"
        )
    if (media_id is None) == (link is None):
        raise ValueError(
            "give exactly one of media_id (an uploaded media id) or link (an https URL)"
        )
    media: dict[str, Any] = {"id": media_id} if media_id is not None else {"link": link}
    if caption is not None:
        if kind not in _CAPTIONED:
            raise ValueError(f"{kind} messages cannot have a caption")
        media["caption"] = caption
    if filename is not None:
        if kind != "document":
            raise ValueError("only documents have a filename")
        media["filename"] = filename
    return _envelope(to, kind, media, reply_to)


def reaction_payload(to: str, message_id: str, emoji: str) -> dict[str, Any]:
    """React to ``message_id`` with ``emoji``; an empty emoji removes the reaction."""
    return _envelope(to, "reaction", {"message_id": message_id, "emoji": emoji}, None)


def read_payload(message_id: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}


def parse_sent(data: Any) -> SentMessage:
    try:
        message = data["messages"][0]
        contact = (data.get("contacts") or [{}])[0]
        wamid = message["id"]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UnexpectedAnswerError(
            "Meta accepted the message but the answer has no messages[0].id"
        ) from None
    if not isinstance(wamid, str):
        raise UnexpectedAnswerError("Meta's answer has a message id that is not a string")
    return SentMessage(
        id=wamid,
        wa_id=contact.get("wa_id") if isinstance(contact, dict) else None,
        input=contact.get("input") if isinstance(contact, dict) else None,
        message_status=message.get("message_status"),
        raw=data,
    )


def parse_phone_number(data: Any) -> PhoneNumberInfo:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise UnexpectedAnswerError("Meta's phone-number answer has no id")
    throughput = data.get("throughput")
    return PhoneNumberInfo(
        id=data["id"],
        display_phone_number=data.get("display_phone_number"),
        verified_name=data.get("verified_name"),
        quality_rating=data.get("quality_rating"),
        code_verification_status=data.get("code_verification_status"),
        platform_type=data.get("platform_type"),
        throughput_level=throughput.get("level") if isinstance(throughput, dict) else None,
        raw=data,
    )
