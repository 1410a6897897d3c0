"""What an answer (or the lack of one) from the Graph API means, decided without I/O.

:class:`~permatoken.meta.graph.BaseGraphClient` sends nothing itself; its sync and async twins
send, and both hand what came back to these functions: :func:`read_answer` turns a read
response into its JSON payload or a :class:`GraphErrorInfo`, :func:`transport_failure` does the
same for an httpx exception (and says whether the request may have reached Meta), and
:func:`scrub` masks the request's own secrets wherever the answer echoed them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import httpx

from .._secret import redact
from ._body import decode_body
from .bounded import BoundedResponse, json_content_type, unexpected_answer
from .errors import ErrorKind, GraphErrorInfo, classify_graph_error

__all__ = ["NOT_SENT", "read_answer", "scrub", "transport_failure"]

#: Failures where the request cannot have been sent: safe to retry without doubling anything.
NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


def read_answer(response: BoundedResponse) -> tuple[Any, GraphErrorInfo | None]:
    """``(payload, None)`` for a successful JSON answer, ``(None, info)`` for anything else.

    A 2xx with an ``error`` object is an error (Meta does that); so is a 2xx that is not JSON
    (a captive portal, a proxy page) or has no JSON body at all.
    """
    payload, fallback = decode_body(response.content)
    failed = response.status_code >= 400 or (
        isinstance(payload, dict) and isinstance(payload.get("error"), dict | str)
    )
    if failed:
        return None, classify_graph_error(response.status_code, response.headers, response.content)
    problem = None
    if json_content_type(response.headers) is False:
        kind = response.headers.get("content-type", "").split(";")[0]
        problem = f"a {response.status_code} answer of type {kind}, not JSON"
    elif not 200 <= response.status_code < 300:
        problem = f"an unexpected HTTP {response.status_code}"
    elif payload is None:
        # Never the body itself: a 200 with a raw token in it must not reach a log.
        ambiguous = fallback is not None and fallback.startswith("ambiguous")
        problem = fallback if ambiguous else "the response body is not JSON"
    if problem is not None:
        return None, unexpected_answer(problem, response.status_code)
    return payload, None


def transport_failure(exc: httpx.HTTPError) -> tuple[GraphErrorInfo, bool]:
    """``(info, ambiguous)`` for a request that got no answer; ambiguous = it may have been sent."""
    sent = not isinstance(exc, NOT_SENT)
    bad_url = isinstance(exc, httpx.UnsupportedProtocol)
    kind = ErrorKind.BAD_REQUEST if bad_url else ErrorKind.TRANSIENT
    detail = redact(str(exc))[:200] or "no detail"
    info = GraphErrorInfo(
        kind=kind,
        code=None,
        subcode=None,
        message=f"{type(exc).__name__}: {detail}",
        http_status=None,
        advice="Retry with backoff" if kind is ErrorKind.TRANSIENT else "Check the Graph URL",
    )
    return info, sent


def scrub(info: GraphErrorInfo, secrets: list[str]) -> GraphErrorInfo:
    """Mask the request's own secrets wherever Meta (or a proxy) echoed them back."""

    def clean(text: str) -> str:
        for value in secrets:
            text = text.replace(value, "**********")
        return text

    details = clean(info.details) if info.details is not None else None
    return dataclasses.replace(info, message=clean(info.message), details=details)
