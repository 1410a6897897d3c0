"""Checking that a request really comes from Meta (reference section 10b). Pure: no I/O.

- Webhook deliveries carry ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the *raw*
  body keyed with the app secret. We try every registered app's secret; the one that matches
  names the app the delivery is for.
- The deauthorize callback posts ``signed_request = base64url(sig) "." base64url(payload)``,
  the signature being the HMAC-SHA256 of the *encoded* payload string.
- The verification handshake compares ``hub.verify_token`` with our setting.

Every comparison is constant time (:func:`hmac.compare_digest`). Failures say which check
failed (for the log and the status code), never any secret or the expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._secret import Secret

SIGNATURE_HEADER = "x-hub-signature-256"
_PREFIX = "sha256="


class SignatureRefused(Exception):
    """Why a delivery is refused; ``missing`` → 401, otherwise 403."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


def hub_signature(secret: Secret, body: bytes) -> str:
    return _PREFIX + hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()


def app_of_delivery(header: str | None, body: bytes, secrets: Mapping[str, Secret]) -> str:
    """The id of the app whose secret signed ``body``; refuse a missing or wrong signature."""
    if not header:
        raise SignatureRefused("no X-Hub-Signature-256 header", missing=True)
    given = header.strip()
    if not given.lower().startswith(_PREFIX) or len(given) != len(_PREFIX) + 64:
        raise SignatureRefused("X-Hub-Signature-256 is not sha256=<64 hex digits>")
    given = _PREFIX + given[len(_PREFIX) :].lower()
    found = None
    for app_id, secret in secrets.items():
        # Every secret is tried (no early exit) so timing says nothing about which one matched.
        if hmac.compare_digest(hub_signature(secret, body).encode(), given.encode()):
            found = app_id
    if found is None:
        raise SignatureRefused("the signature matches no registered app's secret")
    return found


@dataclass(frozen=True)
class SignedRequest:
    app_id: str
    payload: dict[str, Any]


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse_signed_request(value: str | None, secrets: Mapping[str, Secret]) -> SignedRequest:
    """Verify a ``signed_request`` form value against every app secret; the payload it carries."""
    if not value:
        raise SignatureRefused("no signed_request field", missing=True)
    if len(value) > 8192 or value.count(".") != 1:
        raise SignatureRefused("signed_request is not <signature>.<payload>")
    sig_part, payload_part = value.split(".")
    try:
        signature = _unb64(sig_part)
        payload = json.loads(_unb64(payload_part))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SignatureRefused("signed_request is not base64url JSON") from None
    if not isinstance(payload, dict):
        raise SignatureRefused("signed_request payload is not a JSON object")
    if str(payload.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise SignatureRefused("signed_request algorithm is not HMAC-SHA256")
    found = None
    for app_id, secret in secrets.items():
        expected = hmac.new(secret.reveal().encode(), payload_part.encode(), hashlib.sha256)
        if hmac.compare_digest(expected.digest(), signature):
            found = app_id
    if found is None:
        raise SignatureRefused("signed_request signature matches no registered app's secret")
    return SignedRequest(found, payload)


def verify_token_matches(given: str | None, expected: Secret) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.reveal().encode())


__all__ = [
    "SIGNATURE_HEADER",
    "SignatureRefused",
    "SignedRequest",
    "app_of_delivery",
    "hub_signature",
    "parse_signed_request",
    "verify_token_matches",
]
