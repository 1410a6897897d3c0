"""Shared handling of non-Meta token endpoints' answers (OAuth2 servers, BSP login APIs)."""

from __future__ import annotations

from typing import Any

import httpx

from .._exceptions import RotationError
from .._secret import redact
from .base import IssueContext


def post(ctx: IssueContext, url: str, **kwargs: Any) -> Any:
    """POST and return the JSON answer, turning every failure into a classified RotationError."""
    name = ctx.credential.name
    try:
        response = ctx.http.post(url, **kwargs)
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
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success and isinstance(data, dict):
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):  # some providers nest it
        error = error.get("code") or error.get("message")
    text = redact(str(error or response.reason_phrase))[:200]
    status = response.status_code
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
            f"{name}: token endpoint answered without JSON", name=name, reason="upstream"
        )
    raise RotationError(
        f"{name}: token endpoint refused with HTTP {status} ({text})",
        hint="the stored refresh token or password no longer works; supply a new one",
        name=name,
        reason="needs_human",
        needs_human=True,
    )
