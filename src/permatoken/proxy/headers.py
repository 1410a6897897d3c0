"""Which headers cross the proxy, and a mask that keeps the Meta token out of answers (no I/O).

Requests keep their end-to-end headers (``Content-Type``, ``User-Agent``, ``Accept``…). Dropped:
hop-by-hop headers (RFC 9110 7.6.1, and any header a ``Connection`` header names), the client's
credentials (``Authorization``, ``Cookie``), ``Host`` and ``Content-Length`` (set for the
upstream request), what proxies add about the client (``Forwarded``, ``X-Forwarded-*``,
``X-Real-IP``, ``Via``) and URL-override headers some servers obey (``X-Original-URL``,
``X-Rewrite-URL``). ``Accept-Encoding`` is replaced by ``identity``: answers are read as sent,
which lets the proxy classify Meta's errors and mask a token Meta may echo ("Malformed access
token EAA…") without decoding anything.

Answers keep every header of Meta's (usage headers included) except hop-by-hop ones and
``Date``/``Server`` (the proxy's server sets its own); values that contain the token are masked.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_REQUEST_DROPPED = HOP_BY_HOP | {
    b"authorization",
    b"cookie",
    b"host",
    b"content-length",
    b"expect",
    b"accept-encoding",
    b"forwarded",
    b"via",
    b"x-real-ip",
    b"x-original-url",
    b"x-rewrite-url",
}
#: ``Date`` and ``Server`` are the proxy's own (uvicorn sets them): two of each would be invalid.
_RESPONSE_DROPPED = HOP_BY_HOP | {b"content-length", b"date", b"server"}

Headers = list[tuple[bytes, bytes]]


def _connection_listed(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    listed: set[bytes] = set()
    for key, value in headers:
        if key.lower() == b"connection":
            listed.update(v.strip().lower() for v in value.split(b","))
    return listed


def request_headers(raw: Headers) -> Headers:
    """The client's headers that go on to Meta."""
    dropped = _REQUEST_DROPPED | _connection_listed(raw)
    out = [
        (k, v)
        for k, v in raw
        if (low := k.lower()) not in dropped and not low.startswith(b"x-forwarded-")
    ]
    out.append((b"accept-encoding", b"identity"))
    return out


def response_headers(raw: Iterable[tuple[bytes, bytes]], mask: Mask) -> Headers:
    """Meta's headers that go back to the client (the proxy sets Content-Length itself)."""
    items = list(raw)
    dropped = _RESPONSE_DROPPED | _connection_listed(items)
    return [(k, mask.apply(v)) for k, v in items if k.lower() not in dropped]


class Mask:
    """Replaces secret values by asterisks of the same length (Content-Length stays right).

    :meth:`feed` works on a stream: it holds back the last ``len(secret) - 1`` bytes of each
    chunk until the next one (or :meth:`flush`), so a value split across chunks is caught too.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s.encode() for s in secrets if len(s) >= 8]
        self._hold = max((len(s) for s in self.secrets), default=1) - 1
        self._tail = b""

    def apply(self, data: bytes) -> bytes:
        for secret in self.secrets:
            if secret in data:
                data = data.replace(secret, b"*" * len(secret))
        return data

    def feed(self, chunk: bytes) -> bytes:
        data = self.apply(self._tail + chunk)
        if self._hold <= 0:
            return data
        cut = max(0, len(data) - self._hold)
        self._tail = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        data, self._tail = self._tail, b""
        return data


__all__ = ["HOP_BY_HOP", "Mask", "request_headers", "response_headers"]
