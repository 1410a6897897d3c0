"""Reading an answer from Meta (or any token endpoint) within a size and a time budget.

httpx's timeouts bound each read, not the whole body: a server that drips one byte every few
seconds, or sends 10 MB of HTML, would hold a renewal (and its lease) for as long as it likes
and fill memory. :func:`read_bounded` / :func:`aread_bounded` stream the body and stop at
``max_bytes`` or after ``deadline`` seconds, raising :class:`ResponseTooLarge` or
:class:`ResponseTooSlow`. The request may have reached the server in both cases (a token may
have been issued): callers treat them as ambiguous failures.

Whether a successful answer is JSON at all is :func:`json_content_type`'s question: Meta
answers ``application/json`` (``text/javascript`` in older versions); an HTML page with a 200
is a captive portal or a proxy, never a token.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Final

import httpx

from .._secret import redact
from .errors import ErrorKind, GraphErrorInfo

__all__ = [
    "BAD_READS",
    "MAX_RESPONSE_BYTES",
    "RESPONSE_DEADLINE",
    "BoundedResponse",
    "ResponseTooLarge",
    "ResponseTooSlow",
    "aread_bounded",
    "bad_read_info",
    "json_content_type",
    "read_bounded",
    "unexpected_answer",
]

#: Meta's largest answers permatoken reads (a debug_token with many granular scopes, a page of
#: phone numbers) are a few KiB; 1 MiB leaves room and still bounds memory.
MAX_RESPONSE_BYTES: Final = 1024 * 1024
#: Seconds for a whole answer, headers to last byte.
RESPONSE_DEADLINE: Final = 30.0
_JSON_TYPES: Final = frozenset(
    {"application/json", "text/javascript", "application/javascript", "application/x-javascript"}
)
#: Types that are never a JSON answer, whatever the body looks like.
_NOT_JSON_TYPES: Final = ("text/html", "application/xhtml", "text/xml", "application/xml")


class ResponseTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class ResponseTooSlow(Exception):
    def __init__(self, deadline: float) -> None:
        super().__init__(f"the answer took longer than {deadline:g} s to arrive")
        self.deadline = deadline


@dataclass(frozen=True)
class BoundedResponse:
    """The status, headers and (whole, bounded) body of one answer."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    reason_phrase: str = ""

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def json_content_type(headers: httpx.Headers) -> bool | None:
    """True for a JSON type, False for a type that is never JSON (HTML, XML), None if unsaid."""
    raw = headers.get("content-type")
    if not raw:
        return None
    kind = raw.split(";")[0].strip().lower()
    if kind in _JSON_TYPES or kind.endswith("+json"):
        return True
    if kind.startswith(_NOT_JSON_TYPES):
        return False
    return None


#: What a bounded read can raise besides httpx's own transport errors.
BAD_READS: Final = (ResponseTooLarge, ResponseTooSlow, httpx.InvalidURL)


def unexpected_answer(problem: str, status: int | None) -> GraphErrorInfo:
    """A 2xx (or no) answer that is not what the endpoint promises: unknown, not retried blindly."""
    return GraphErrorInfo(
        kind=ErrorKind.UNKNOWN,
        code=None,
        subcode=None,
        message=problem,
        http_status=status,
        advice="Check that PERMATOKEN_GRAPH_URL points at Meta or the sandbox",
    )


def bad_read_info(exc: Exception) -> tuple[GraphErrorInfo, bool]:
    """``(info, ambiguous)`` for one of :data:`BAD_READS`."""
    if isinstance(exc, ResponseTooSlow):
        slow = unexpected_answer(str(exc), None)
        return dataclasses.replace(slow, kind=ErrorKind.TRANSIENT, advice="Retry later"), True
    if isinstance(exc, ResponseTooLarge):
        return unexpected_answer(str(exc), None), True
    # httpx.InvalidURL: a value (a token) too long or malformed for a URL; nothing was sent.
    info = GraphErrorInfo(
        kind=ErrorKind.BAD_REQUEST,
        code=None,
        subcode=None,
        message=f"the request cannot be sent: {redact(str(exc))[:120]}",
        http_status=None,
        advice="A stored value is malformed: run `permatoken inspect NAME` and replace it",
    )
    return info, False


class _Body:
    """The chunks read so far, against both bounds (shared by the sync and async readers)."""

    def __init__(self, max_bytes: int, deadline: float) -> None:
        self.max_bytes, self.deadline = max_bytes, deadline
        self.started = time.monotonic()
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ResponseTooLarge(self.max_bytes)
        if time.monotonic() - self.started > self.deadline:
            raise ResponseTooSlow(self.deadline)
        self.chunks.append(chunk)

    def response(self, response: httpx.Response) -> BoundedResponse:
        content = b"".join(self.chunks)
        return BoundedResponse(
            response.status_code, response.headers, content, response.reason_phrase
        )


def read_bounded(
    client: httpx.Client,
    *,
    max_bytes: int = MAX_RESPONSE_BYTES,
    deadline: float = RESPONSE_DEADLINE,
    **request: Any,
) -> BoundedResponse:
    """Send ``request`` (httpx ``request()`` arguments) and read the answer within bounds."""
    body = _Body(max_bytes, deadline)
    with client.stream(**request) as response:
        for chunk in response.iter_bytes():
            body.add(chunk)
        return body.response(response)


async def aread_bounded(
    client: httpx.AsyncClient,
    *,
    max_bytes: int = MAX_RESPONSE_BYTES,
    deadline: float = RESPONSE_DEADLINE,
    **request: Any,
) -> BoundedResponse:
    """The async twin of :func:`read_bounded`."""
    body = _Body(max_bytes, deadline)
    async with client.stream(**request) as response:
        async for chunk in response.aiter_bytes():
            body.add(chunk)
        return body.response(response)
