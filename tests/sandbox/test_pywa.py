"""An independent WhatsApp client from PyPI (pywa, built on httpx) against a real sandbox server.

pywa hard-codes ``https://graph.facebook.com/v{version}`` as its session's base URL, so the test
hands it an ``httpx.Client`` whose transport sends every request to the sandbox instead: the same
trick works for any library that accepts an httpx client.
"""

from __future__ import annotations

import httpx
import pytest
from pywa import WhatsApp
from pywa.errors import ExpiredAccessToken, WhatsAppError

from _live_sandbox import ThreadSandbox, ToSandbox


def client_for(live: ThreadSandbox, token: str, phone_id: str) -> WhatsApp:
    session = httpx.Client(transport=ToSandbox(live.url), timeout=5)
    return WhatsApp(phone_id=phone_id, token=token, session=session, api_version="25.0")


def test_pywa_sends_a_text_and_sees_its_own_error_after_revocation(live, fx, state):
    token, phone = fx["tokens"]["system_user"]["value"], fx["phone_numbers"][0]["id"]
    wa = client_for(live, token, phone)
    sent = wa.send_message(to="16505551234", text="Hello from the sandbox")
    assert sent.id.startswith("wamid.")
    assert sent.input == "16505551234"
    [logged] = state.messages()
    assert logged["id"] == sent.id and logged["content"]["body"] == "Hello from the sandbox"
    assert state.calls("POST /{phone-number-id}/messages")[0]["path"] == f"/v25.0/{phone}/messages"

    state.revoke_token(token)
    with pytest.raises(ExpiredAccessToken) as caught:
        wa.send_message(to="16505551234", text="after revocation")
    assert caught.value.code == 190 and caught.value.subcode == 466
    assert caught.value.status_code == 401


def test_pywa_classifies_sandbox_throttling(live, fx, state):
    token, phone = fx["tokens"]["system_user"]["value"], fx["phone_numbers"][0]["id"]
    wa = client_for(live, token, phone)
    state.inject_fault("POST /{phone-number-id}/messages", code=130429)
    with pytest.raises(WhatsAppError) as caught:
        wa.send_message(to="16505551234", text="throttled")
    assert type(caught.value).__name__ == "RateLimitHit"
