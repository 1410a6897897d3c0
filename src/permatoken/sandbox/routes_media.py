"""``POST /{phone-number-id}/media``: the Cloud API media upload (multipart, up to 100 MB).

Form fields ``messaging_product=whatsapp``, ``file`` (the media, with its content type) and
``type`` (the MIME type); the answer is ``{"id": "<media-id>"}``. The sandbox keeps a summary of
each upload (``GET /_sandbox/media``): size and SHA-256, not the bytes.
"""

from __future__ import annotations

import secrets
from typing import Any

from permatoken.sandbox.errors import GraphAPIError
from permatoken.sandbox.request import SandboxRequest
from permatoken.sandbox.routes_messages import sender

ENDPOINT = "POST /{phone-number-id}/media"


def _invalid(details: str) -> GraphAPIError:
    return GraphAPIError(
        100,
        "(#100) Invalid parameter",
        error_data={"messaging_product": "whatsapp", "details": details},
    )


def upload_media(req: SandboxRequest) -> dict[str, Any]:
    _, phone = sender(req)
    if req.body_error is not None:
        raise _invalid(req.body_error)
    if req.params.get("messaging_product") != "whatsapp":
        raise _invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    upload = req.files.get("file")
    if upload is None:
        raise _invalid("The parameter file is required.")
    kind = req.params.get("type") or upload.content_type
    if not kind:
        raise _invalid("The parameter type is required.")
    media_id = str(10**15 + secrets.randbelow(9 * 10**15))
    req.state.record_media(
        {
            "id": media_id,
            "at": req.now,
            "phone_number_id": phone.id,
            "type": kind,
            "filename": upload.filename,
            "size": upload.size,
            "sha256": upload.sha256,
        }
    )
    return {"id": media_id}
