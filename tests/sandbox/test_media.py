"""Media uploads (multipart, large) and form-encoded sends, as Graph takes them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


def _auth(fx: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {fx['tokens']['system_user']['value']}"}


async def test_a_multi_megabyte_upload_is_accepted_and_summarised(client, fx, state):
    """5 MB over the 64 KiB body limit: accepted (media limit), listed with size and SHA-256."""
    phone = fx["phone_numbers"][0]["id"]
    data = bytes(range(256)) * (5 * 4096)
    r = await client.post(
        f"/v25.0/{phone}/media",
        headers=_auth(fx),
        data={"messaging_product": "whatsapp", "type": "video/mp4"},
        files={"file": ("clip.mp4", data, "video/mp4")},
    )
    assert r.status_code == 200, r.text
    media_id = r.json()["id"]
    listed = (await client.get("/_sandbox/media")).json()["data"]
    assert listed == [
        {
            "id": media_id,
            "at": listed[0]["at"],
            "phone_number_id": phone,
            "type": "video/mp4",
            "filename": "clip.mp4",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    ]
    assert state.calls("POST /{phone-number-id}/media")[0]["status"] == 200


async def test_uploads_need_the_form_fields_and_respect_the_media_limit(client, fx, state):
    phone = fx["phone_numbers"][0]["id"]
    r = await client.post(
        f"/v25.0/{phone}/media", headers=_auth(fx), files={"file": ("a.png", b"x", "image/png")}
    )
    assert (
        r.status_code == 400 and "messaging_product" in r.json()["error"]["error_data"]["details"]
    )
    r = await client.post(
        f"/v25.0/{phone}/media",
        headers={**_auth(fx), "content-type": "multipart/form-data; boundary=zz"},
        content=b'--zz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
    )
    assert r.status_code == 400 and "multipart" in r.json()["error"]["error_data"]["details"]
    state.config.max_media_bytes = 1000
    r = await client.post(
        f"/v25.0/{phone}/media",
        headers=_auth(fx),
        data={"messaging_product": "whatsapp"},
        files={"file": ("a.png", b"x" * 2000, "image/png")},
    )
    assert r.status_code == 413
    assert state.media() == []


async def test_a_form_encoded_send_with_json_text_fields_is_accepted(client, fx, state):
    """The FB SDKs send objects as JSON text in urlencoded forms; Graph decodes them."""
    phone = fx["phone_numbers"][0]["id"]
    form = {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "text",
        "text": json.dumps({"body": "from a form"}),
    }
    r = await client.post(f"/v25.0/{phone}/messages", headers=_auth(fx), data=form)
    assert r.status_code == 200, r.text
    assert [m["content"] for m in state.messages()] == [{"body": "from a form"}]
