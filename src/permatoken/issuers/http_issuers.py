"""Shared handling of non-Meta token endpoints' answers (OAuth2 servers, BSP login APIs)."""

from __future__ import annotations

from typing import Any

import httpx

from .._exceptions import RotationError
from .._secret import redact
from ..meta._body import decode_body
from ..meta.bounded import (
    BoundedResponse,
    ResponseTooLarge,
    ResponseTooSlow,
    json_content_type,
    read_bounded,
)
from ..models import json_kind
from .base import IssueContext


def post(ctx: IssueContext, url: str, **kwargs: Any) -> dict[str, Any]:
    """POST and return the JSON object answered, turning every failure into a RotationError.

    The answer is read within the Graph client's bounds (size, whole-answer deadline); an HTML
    page, a JSON array, ambiguous JSON (a repeated key) or a 2xx with an ``error`` is refused.
    """
    name = ctx.credential.name
    try:
        response = read_bounded(
            ctx.http,
            method="POST",
            url=url,
            max_bytes=ctx.graph.max_response_bytes,
            deadline=ctx.graph.response_deadline,
            **kwargs,
        )
    except (ResponseTooLarge, ResponseTooSlow) as exc:
        raise RotationError(
            f"{name}: token endpoint: {exc}", name=name, reason="upstream", ambiguous=True
        ) from exc
    except httpx.TimeoutException as exc:
        raise RotationError(
            f"{name}: token endpoint timed out", name=name, reason="transient", ambiguous=True
        ) from exc
    except httpx.HTTPError as exc:
        raise RotationError(
            f"{name}: cannot reach the token endpoint ({type(exc).__name__})",
            name=name,
            reason="transient",
        ) from exc
    data, fallback = decode_body(response.content)
    status = response.status_code
    if response.is_success and isinstance(data, dict) and "error" not in data:
        if json_content_type(response.headers) is not False:
            return data
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):  # some providers nest it
        error = error.get("code") or error.get("message")
    text = redact(str(error or response.reason_phrase))[:200]
    if status == 429:
        retry = response.headers.get("Retry-After", "")
        raise RotationError(
            f"{name}: token endpoint is throttling ({text})",
            name=name,
            reason="throttled",
            retry_after=float(retry) if retry.isdigit() else None,
        )
    if status >= 500:
        raise RotationError(
            f"{name}: token endpoint failed with HTTP {status} ({text})",
            name=name,
            reason="transient",
        )
    if response.is_success:
        raise RotationError(
            f"{name}: token endpoint answered HTTP {status} with {_shape(data, fallback, response)}",
            name=name,
            reason="upstream",
        )
    raise RotationError(
        f"{name}: token endpoint refused with HTTP {status} ({text})",
        hint="the stored refresh token or password no longer works; supply a new one",
        name=name,
        reason="needs_human",
        needs_human=True,
    )


def _shape(data: Any, fallback: str | None, response: BoundedResponse) -> str:
    """What was wrong with a 2xx answer, in words that never quote it."""
    if json_content_type(response.headers) is False:
        return f"a {response.headers.get('content-type', '').split(';')[0]} page, not JSON"
    if isinstance(data, dict):
        return "an error object"
    if data is not None:
        return f"{json_kind(data)} instead of a JSON object"
    if fallback is not None and fallback.startswith("ambiguous"):
        return fallback
    return "a body that is not JSON" if response.content.strip() else "an empty body"


def upstream_error(ctx: IssueContext, message: str) -> RotationError:
    """A token endpoint's answer that cannot be used: a failed attempt, never a human's job."""
    name = ctx.credential.name
    return RotationError(f"{name}: {message}", name=name, reason="upstream")


def token_field(ctx: IssueContext, value: Any, what: str) -> str:
    """``value`` if it is a usable token string, else a RotationError naming what is wrong."""
    if not isinstance(value, str):
        problem = f"is {json_kind(value)}, not a string" if value is not None else "is missing"
        raise upstream_error(ctx, f"{what} {problem} in the answer")
    return value
