"""``appsecret_proof``: proves a server call comes from someone who knows the app secret.

Classic form (official SDK, PHP ``hash_hmac('sha256', $access_token, $app_secret)``):
``hex(HMAC_SHA256(key=app_secret, msg=access_token))``. Time-stamped form (Login Security):
``hex(HMAC_SHA256(app_secret, access_token + "|" + unix_time))`` sent with
``appsecret_time=unix_time``; Meta treats it as expired after 5 minutes.
"""

from __future__ import annotations

import hashlib
import hmac

from .._secret import Secret

__all__ = ["appsecret_proof", "appsecret_proof_timed"]


def _raw(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def appsecret_proof(app_secret: str | Secret, access_token: str | Secret) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret."""
    key = _raw(app_secret).encode()
    return hmac.new(key, _raw(access_token).encode(), hashlib.sha256).hexdigest()


def appsecret_proof_timed(
    app_secret: str | Secret, access_token: str | Secret, now: int
) -> tuple[str, int]:
    """The time-stamped proof and the ``appsecret_time`` to send with it."""
    if isinstance(now, bool) or not isinstance(now, int):
        raise TypeError("appsecret_time must be an integer unix time")
    message = f"{_raw(access_token)}|{now}".encode()
    return hmac.new(_raw(app_secret).encode(), message, hashlib.sha256).hexdigest(), now
