"""What Meta sends to an app's own endpoints, as pure functions (reference section 10b).

- The webhook verification handshake: ``GET url?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…``
  must answer 200 with the challenge as the body.
- Webhook deliveries: a JSON envelope signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
  the raw body, keyed with the app secret>`` (and the legacy SHA-1 ``X-Hub-Signature``).
- The deauthorize callback's ``signed_request``: ``base64url(HMAC-SHA256(encoded payload)) + "." +
  base64url(JSON payload)``, unpadded, as Facebook Login has always sent it.

No I/O here: :mod:`permatoken.sandbox.webhooks` sends what these functions build.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import secrets
from typing import Any


class AccountEvent(enum.StrEnum):
    """The ``account_update`` events the sandbox can raise (reference 10b)."""

    PARTNER_APP_INSTALLED = "PARTNER_APP_INSTALLED"
    PARTNER_APP_UNINSTALLED = "PARTNER_APP_UNINSTALLED"
    PARTNER_REMOVED = "PARTNER_REMOVED"
    ACCOUNT_DELETED = "ACCOUNT_DELETED"
    ACCOUNT_OFFBOARDED = "ACCOUNT_OFFBOARDED"
    ACCOUNT_RECONNECTED = "ACCOUNT_RECONNECTED"
    DISABLED_UPDATE = "DISABLED_UPDATE"

    @property
    def about_partner(self) -> bool:
        """``PARTNER_*`` events concern the app itself, not what a WABA subscription asks for."""
        return self.value.startswith("PARTNER_")


#: ``ban_info.waba_ban_state`` values of ``DISABLED_UPDATE``.
BAN_STATES = ("DISABLE", "REINSTATE", "SCHEDULE_FOR_DISABLE")


def canonical_json(value: Any) -> bytes:
    """The exact bytes sent (and signed): compact, ASCII-only as Meta's bodies are."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode()


def account_update(
    waba_id: str, time: int, value: dict[str, Any], *, entry_id: str | None = None
) -> dict[str, Any]:
    """The webhook envelope of one ``account_update`` change."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": entry_id or waba_id,
                "time": time,
                "changes": [{"field": "account_update", "value": value}],
            }
        ],
    }


def event_value(
    event: AccountEvent,
    *,
    waba_id: str,
    owner_business_id: str,
    app_id: str,
    ban_state: str | None = None,
    ban_date: str | None = None,
) -> dict[str, Any]:
    """``changes[].value`` for ``event``: ``waba_info`` on ``PARTNER_*``, ``ban_info`` on bans."""
    value: dict[str, Any] = {"event": event.value}
    if event.about_partner:
        info = {"waba_id": waba_id, "owner_business_id": owner_business_id}
        if event in (AccountEvent.PARTNER_APP_INSTALLED, AccountEvent.PARTNER_APP_UNINSTALLED):
            info["partner_app_id"] = app_id
        value["waba_info"] = info
    if event is AccountEvent.DISABLED_UPDATE:
        value["ban_info"] = {"waba_ban_state": ban_state or "DISABLE", "waba_ban_date": ban_date}
    return value


def hub_signature_256(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def hub_signature_sha1(app_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()


def delivery_headers(app_secret: str, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "facebookexternalua",
        "x-hub-signature": hub_signature_sha1(app_secret, body),
        "x-hub-signature-256": hub_signature_256(app_secret, body),
    }


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed_request(app_secret: str, payload: dict[str, Any]) -> str:
    """Facebook's ``signed_request``: the signature covers the *encoded* payload string."""
    encoded = _b64url(canonical_json(payload))
    signature = hmac.new(app_secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return f"{_b64url(signature)}.{encoded}"


def deauthorize_payload(user_id: str, issued_at: int) -> dict[str, Any]:
    return {"algorithm": "HMAC-SHA256", "issued_at": issued_at, "user_id": user_id}


def new_challenge() -> str:
    """Meta's challenges are decimal strings (e.g. ``1158201444``)."""
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def handshake_params(verify_token: str, challenge: str) -> dict[str, str]:
    return {
        "hub.mode": "subscribe",
        "hub.challenge": challenge,
        "hub.verify_token": verify_token,
    }


def handshake_problem(status: int, body: str, challenge: str) -> str | None:
    """Why a verification answer is refused, or ``None`` when it echoes the challenge with 200."""
    if status != 200:
        return f"answered HTTP {status} (expected 200 with the hub.challenge value as the body)"
    if body.strip() != challenge:
        return "answered 200 without echoing the hub.challenge value as the body"
    return None


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2·base, 4·base… ≤ cap."""
    return float(min(cap, base * 2 ** min(attempts - 1, 62)))
