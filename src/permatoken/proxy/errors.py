"""The proxy's own answers, in Graph's error shape, with codes Graph libraries already handle.

Every refusal is ``{"error": {"message": "permatoken: …", "type": …, "code": …}}`` (plus
``is_transient`` / ``error_data`` where Meta sends them) and the header ``X-Permatoken-Error``
with the machine-readable reason below. Libraries act on ``code`` as they would on Meta's:

==========================  ======  ======  ====================  ===============================
reason                      status  code    type                  what the library does
==========================  ======  ======  ====================  ===============================
missing_key                 401     104     OAuthException        auth error: fix configuration
unauthorized                401     190     OAuthException        "invalid token": fix the key
too_many_failures           429     4       OAuthException        rate limit: back off
duplicate_key               400     100     OAuthException        bad request: send the key once
forbidden                   403     200     OAuthException        permission error, not retried
unknown_credential          404     100     GraphMethodException  bad request (unknown object)
bad_path                    400     100     GraphMethodException  bad request
bad_method                  405     100     GraphMethodException  bad request
body_too_large              413     100     GraphMethodException  bad request
key_too_late                400     100     OAuthException        bad request: move the key
token_dead                  401     190     OAuthException        "invalid token": not sent
paced                       429     130429  OAuthException        throughput limit: back off
upstream_unreachable        502     2       OAuthException        transient: nothing was sent
upstream_lost               502     1       OAuthException        unknown outcome: check first
upstream_timeout            504     1       OAuthException        unknown outcome: check first
unavailable                 503     2       OAuthException        transient: retry shortly
internal_error              500     1       OAuthException        unknown error
==========================  ======  ======  ====================  ===============================

``upstream_lost`` and ``upstream_timeout`` mean the request reached Meta and its answer did not
come back: it may have been carried out, so the proxy never sends it again by itself. Only
``upstream_unreachable`` (no connection was made) is safe to retry blindly.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from .._secret import redact


class Refusal(enum.StrEnum):
    MISSING_KEY = "missing_key"
    UNAUTHORIZED = "unauthorized"
    TOO_MANY_FAILURES = "too_many_failures"
    DUPLICATE_KEY = "duplicate_key"
    FORBIDDEN = "forbidden"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    BAD_PATH = "bad_path"
    BAD_METHOD = "bad_method"
    BODY_TOO_LARGE = "body_too_large"
    KEY_TOO_LATE = "key_too_late"
    TOKEN_DEAD = "token_dead"  # noqa: S105 - a reason, not a secret
    PACED = "paced"
    UPSTREAM_UNREACHABLE = "upstream_unreachable"
    UPSTREAM_LOST = "upstream_lost"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


_OAUTH, _METHOD = "OAuthException", "GraphMethodException"
#: reason → (HTTP status, Graph code, Graph type, is_transient or None to leave it out)
TABLE: dict[Refusal, tuple[int, int, str, bool | None]] = {
    Refusal.MISSING_KEY: (401, 104, _OAUTH, None),
    Refusal.UNAUTHORIZED: (401, 190, _OAUTH, None),
    Refusal.TOO_MANY_FAILURES: (429, 4, _OAUTH, True),
    Refusal.DUPLICATE_KEY: (400, 100, _OAUTH, None),
    Refusal.FORBIDDEN: (403, 200, _OAUTH, None),
    Refusal.UNKNOWN_CREDENTIAL: (404, 100, _METHOD, None),
    Refusal.BAD_PATH: (400, 100, _METHOD, None),
    Refusal.BAD_METHOD: (405, 100, _METHOD, None),
    Refusal.BODY_TOO_LARGE: (413, 100, _METHOD, None),
    Refusal.KEY_TOO_LATE: (400, 100, _OAUTH, None),
    Refusal.TOKEN_DEAD: (401, 190, _OAUTH, None),
    Refusal.PACED: (429, 130429, _OAUTH, True),
    Refusal.UPSTREAM_UNREACHABLE: (502, 2, _OAUTH, True),
    Refusal.UPSTREAM_LOST: (502, 1, _OAUTH, False),
    Refusal.UPSTREAM_TIMEOUT: (504, 1, _OAUTH, False),
    Refusal.UNAVAILABLE: (503, 2, _OAUTH, True),
    Refusal.INTERNAL_ERROR: (500, 1, _OAUTH, None),
}


@dataclass(eq=False)
class ProxyRefusal(Exception):
    """An answer the proxy chose to give instead of Meta's."""

    reason: Refusal
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    error_data: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    @property
    def status(self) -> int:
        return TABLE[self.reason][0]

    def body(self) -> bytes:
        _, code, kind, transient = TABLE[self.reason]
        error: dict[str, Any] = {
            "message": "permatoken: " + redact(self.message),
            "type": kind,
            "code": code,
        }
        if transient is not None:
            error["is_transient"] = transient
        if self.error_data is not None:
            error["error_data"] = self.error_data
        return json.dumps({"error": error}, separators=(",", ":")).encode()

    def raw_headers(self, length: int) -> list[tuple[bytes, bytes]]:
        headers = {
            "content-type": "application/json; charset=UTF-8",
            "content-length": str(length),
            "cache-control": "no-store",
            "x-permatoken-error": self.reason.value,
            **self.headers,
        }
        if TABLE[self.reason][1] in (104, 190):
            kind = "invalid_request" if self.reason is Refusal.MISSING_KEY else "invalid_token"
            headers["www-authenticate"] = f'OAuth "permatoken" "{kind}"'
        return [(k.encode(), v.encode("latin-1", "replace")) for k, v in headers.items()]


def refuse(reason: Refusal, message: str, **kw: Any) -> ProxyRefusal:
    return ProxyRefusal(reason, message, **kw)


#: The broker's refusals of a key (server/auth.py, server/recorder.py) as the proxy's reasons.
_FROM_BROKER = {
    401: Refusal.UNAUTHORIZED,
    403: Refusal.FORBIDDEN,
    429: Refusal.TOO_MANY_FAILURES,
    503: Refusal.UNAVAILABLE,
}
_KEY_HINT = (
    "; give the library a permatoken API key (pt_…, role app, granted this credential) "
    "as its access token"
)


def from_broker(status: int, message: str, headers: dict[str, str] | None) -> ProxyRefusal:
    """A refusal of the broker's (``ApiError``), said the way Graph libraries understand."""
    reason = _FROM_BROKER.get(status, Refusal.INTERNAL_ERROR)
    extra = {k: v for k, v in (headers or {}).items() if k.lower() == "retry-after"}
    text = message + (_KEY_HINT if reason is Refusal.UNAUTHORIZED else "")
    return ProxyRefusal(reason, text, headers=extra)


__all__ = ["TABLE", "ProxyRefusal", "Refusal", "from_broker", "refuse"]
