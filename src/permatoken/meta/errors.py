"""What a Graph API error means: one pure function from (status, headers, body) to a verdict.

Meta's advice is to act on ``code``, not on the HTTP status or the subcode, and real responses
prove it (reference §10): 190 has come back as 400 and 401, throttles as 400 or 429, codes 1
and 2 as 500, and a 502 with an HTML page. So :func:`classify_graph_error` reads the code
(from ``code``, or ``(#613)`` / ``(# 613)`` in the message when the field is missing) and uses
the HTTP status only when no code can be found at all. The codes, subcodes and message texts
behind each row are data in :mod:`permatoken.meta.error_codes`.

=========================================  =====================  ============================
code                                       kind                   note
=========================================  =====================  ============================
190 "must be called with a client access   wrong_token_kind       the token may be fine
token", "Debug only access token"
190, 102, 104, 0, 452                     token_dead             subcode → :class:`TokenDeath`
2500 about the token ("An active access    token_dead             no token was sent, or a dead
token must be used…")                                             one
2500 anything else ("Unknown path          bad_request            a wrong URL, not a dead token
components")
3, 10, 200-299, 368, 131005, 131031        permission             never retried
4, 17, 32, 613, 80007, 80008, 130429,      throttled              wait, never refresh
131048, 133016
131056                                     pair_rate_limited      only this recipient
1, 2, 131000, 131016, 131057,              transient              131057: about 60 s
unknown code with ``is_transient: true``
1 "Error validating client secret."        bad_request            permanent
100, 101, other 13xxxx, 135000             bad_request
-1, anything else                          unknown                not retried blindly
=========================================  =====================  ============================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import GraphError
from .._secret import redact
from ._body import as_error_object, decode_body
from .error_codes import (
    BAD_REQUEST_CODES,
    CLIENT_SECRET,
    CODE_PREFIX,
    DEAD_CODES,
    DEFAULT_THROTTLE_HINT,
    DEFAULT_TRANSIENT_HINT,
    PAIR_HINT,
    PAIR_RATE_LIMITED_CODE,
    PERMISSION_CODES,
    RETRYABLE,
    THROTTLE_HINTS,
    TOKEN_2500,
    TRANSIENT_HINTS,
    WRONG_KIND,
    ErrorKind,
    TokenDeath,
    advice_for,
    death_for,
)
from .error_codes import DEATH_ADVICE as DEATH_ADVICE  # re-exported for older imports
from .error_codes import DEATH_REASONS as DEATH_REASONS
from .usage import parse_usage

if TYPE_CHECKING:
    from .usage import Usage

__all__ = ["ErrorKind", "GraphErrorInfo", "TokenDeath", "classify_graph_error", "graph_error"]


@dataclass(frozen=True)
class GraphErrorInfo:
    """A classified Graph error. ``message`` and ``details`` are redacted and safe to show.

    ``renewable`` answers "can the same token still be refreshed?": false only for a dead
    token. ``retry_after`` is in seconds (Meta's estimate, ``Retry-After``, or a hint).
    ``is_transient`` is Meta's own flag as sent (``None`` when absent); use :attr:`retryable`
    for the decision.
    """

    kind: ErrorKind
    code: int | None
    subcode: int | None
    message: str
    http_status: int | None
    retry_after: float | None = None
    is_transient: bool | None = None
    fbtrace_id: str | None = None
    death: TokenDeath | None = None
    renewable: bool = True
    advice: str = ""
    type: str | None = None
    details: str | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def describe(self) -> str:
        """One line for humans: the message with its code, subcode and HTTP status."""
        parts = []
        if self.code is not None:
            parts.append(f"code {self.code}" + (f"/{self.subcode}" if self.subcode else ""))
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        suffix = f" ({', '.join(parts)})" if parts else ""
        return f"{self.kind}: {self.message}{suffix}"


_MAX_MESSAGE: Final = 500


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return redact(value.strip())[:_MAX_MESSAGE]
    return None


def _lower_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _retry_after_header(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # HTTP-date form: not worth a clock dependency here
    return seconds if seconds >= 0 else None


def _kind_for_code(code: int, message: str, is_transient: bool | None) -> ErrorKind:
    if code == 2500:
        return ErrorKind.TOKEN_DEAD if TOKEN_2500.search(message) else ErrorKind.BAD_REQUEST
    if code in DEAD_CODES:
        return ErrorKind.WRONG_TOKEN_KIND if WRONG_KIND.search(message) else ErrorKind.TOKEN_DEAD
    if code == 1 and CLIENT_SECRET.search(message):
        return ErrorKind.BAD_REQUEST
    if code in THROTTLE_HINTS:
        return ErrorKind.THROTTLED
    if code == PAIR_RATE_LIMITED_CODE:
        return ErrorKind.PAIR_RATE_LIMITED
    if code in TRANSIENT_HINTS:
        return ErrorKind.TRANSIENT
    if code in PERMISSION_CODES or 200 <= code <= 299:
        return ErrorKind.PERMISSION
    if code == -1:
        return ErrorKind.UNKNOWN  # has been a client bug; never succeeds on retry
    if code in BAD_REQUEST_CODES or 130000 <= code <= 133999:
        return ErrorKind.BAD_REQUEST
    if is_transient:
        return ErrorKind.TRANSIENT
    return ErrorKind.UNKNOWN


def _kind_for_status(status: int, www_authenticate: str) -> ErrorKind:
    if "invalid_token" in www_authenticate or status == 401:
        return ErrorKind.TOKEN_DEAD
    if status == 429:
        return ErrorKind.THROTTLED
    if status == 403:
        return ErrorKind.PERMISSION
    if status in (408, 425) or status >= 500:
        return ErrorKind.TRANSIENT
    if 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.UNKNOWN


def _retry_after(
    kind: ErrorKind, code: int | None, headers: Mapping[str, str], regain: float | None
) -> float | None:
    if kind not in RETRYABLE:
        return None
    if regain:
        return regain
    header = _retry_after_header(headers.get("retry-after"))
    if header is not None:
        return header
    if kind is ErrorKind.PAIR_RATE_LIMITED:
        return PAIR_HINT
    if code is not None and code in THROTTLE_HINTS and kind is ErrorKind.THROTTLED:
        return THROTTLE_HINTS[code]
    if code is not None and code in TRANSIENT_HINTS:
        return TRANSIENT_HINTS[code]
    return DEFAULT_THROTTLE_HINT if kind is ErrorKind.THROTTLED else DEFAULT_TRANSIENT_HINT


def classify_graph_error(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str | Mapping[str, Any] | None,
) -> GraphErrorInfo:
    """Classify one error response from Meta (or anything pretending to be Meta).

    ``body`` may be the raw bytes, text, a decoded mapping, a Graph envelope ``{"error": …}``,
    a ``debug_token`` response whose ``data.error`` explains an invalid token, or that inner
    error object itself. Never raises.
    """
    lowered = _lower_headers(headers)
    payload, fallback_message = decode_body(body)
    error = as_error_object(payload)

    raw_message = error.get("message") if error else None
    message_for_match = raw_message if isinstance(raw_message, str) else ""
    code = _to_int(error.get("code")) if error else None
    if code is None and message_for_match:
        match = CODE_PREFIX.search(message_for_match)
        code = int(match.group(1)) if match else None
    subcode = _to_int(error.get("error_subcode", error.get("subcode"))) if error else None
    is_transient = _to_bool(error.get("is_transient")) if error else None

    if code is not None:
        kind = _kind_for_code(code, message_for_match, is_transient)
    elif is_transient:
        kind = ErrorKind.TRANSIENT
    else:
        kind = _kind_for_status(status, lowered.get("www-authenticate", ""))

    death = death_for(subcode, message_for_match, code) if kind is ErrorKind.TOKEN_DEAD else None
    error_data = error.get("error_data") if error else None
    details = None
    if isinstance(error_data, Mapping):
        details = _text(error_data.get("details"))
    elif isinstance(error_data, str):
        details = _text(error_data)
    error_type = error.get("type") if error else None
    trace = error.get("fbtrace_id") if error else None
    message = _text(raw_message) or _text(error.get("error_user_msg") if error else None)
    message = message or fallback_message or f"HTTP {status} without an error message"
    if not isinstance(trace, str):
        trace = lowered.get("x-fb-trace-id")

    return GraphErrorInfo(
        kind=kind,
        code=code,
        subcode=subcode,
        message=message,
        http_status=status,
        retry_after=_retry_after(kind, code, lowered, parse_usage(lowered).regain_access_seconds),
        is_transient=is_transient,
        fbtrace_id=trace,
        death=death,
        renewable=kind is not ErrorKind.TOKEN_DEAD,
        advice=advice_for(kind, death, message_for_match),
        type=error_type if isinstance(error_type, str) else None,
        details=details,
    )


def graph_error(
    info: GraphErrorInfo,
    message: str | None = None,
    *,
    endpoint: str | None = None,
    ambiguous: bool = False,
    usage: Usage | None = None,
) -> GraphError:
    """The :class:`GraphError` for ``info``, with the same attributes wherever it is raised.

    Attributes: ``error`` (the :class:`GraphErrorInfo`), ``kind``, ``graph_code``,
    ``graph_subcode``, ``http_status``, ``endpoint``, ``ambiguous`` (the request may have taken
    effect), ``usage``. ``code`` stays ``"graph_error"``.
    """
    return GraphError(
        message or info.describe(),
        hint=info.advice or None,
        error=info,
        endpoint=endpoint,
        ambiguous=ambiguous,
        usage=usage,
    )
