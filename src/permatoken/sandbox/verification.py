"""Webhook settings: what ``PATCH /_sandbox/config`` accepts, and Meta's verification handshake.

Meta verifies a callback URL before it saves it (reference 10b): ``GET url?hub.mode=subscribe&
hub.challenge=…&hub.verify_token=…`` must answer 200 with the challenge as the body. The sync and
async twins below share the pure parts in :mod:`permatoken.sandbox.signing`; they run outside the
state lock, and on failure the caller changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from permatoken.sandbox.signing import handshake_params, handshake_problem, new_challenge

if TYPE_CHECKING:
    from permatoken.sandbox.config import SandboxConfig


def needs_handshake(old: SandboxConfig, new: SandboxConfig) -> bool:
    """Meta verifies a callback URL when it is set or its verify token changes."""
    return new.webhook_url is not None and (
        new.webhook_url != old.webhook_url or new.webhook_verify_token != old.webhook_verify_token
    )


def check_settings(config: SandboxConfig) -> None:
    """Refuse webhook settings Meta's dashboard would refuse (ValueError, nothing changed)."""
    for name in ("webhook_url", "deauthorize_url"):
        url = getattr(config, name)
        if url is None:
            continue
        try:
            scheme = httpx.URL(url).scheme if isinstance(url, str) else ""
        except httpx.InvalidURL:
            scheme = ""
        if scheme not in ("http", "https"):
            raise ValueError(f"{name} must be an http(s) URL")
    token = config.webhook_verify_token
    if token is not None and (not isinstance(token, str) or not token):
        raise ValueError("webhook_verify_token must be a non-empty string")
    if config.webhook_url is not None and token is None:
        raise ValueError("webhook_url needs a webhook_verify_token for the verification handshake")
    if config.webhook_reorder_batch < 1:
        raise ValueError("webhook_reorder_batch must be at least 1")
    for name in ("webhook_retry_base_seconds", "webhook_retry_cap_seconds"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive")
    if config.webhook_timeout_seconds <= 0 or config.webhook_retry_window_seconds < 0:
        raise ValueError("webhook_timeout_seconds must be positive and the window non-negative")
    if config.partner_event_entry_id not in ("waba", "partner_business"):
        raise ValueError("partner_event_entry_id is 'waba' or 'partner_business'")


def _failure(exc: httpx.HTTPError) -> str:
    return f"could not reach it ({type(exc).__name__})"


def _handshake_request(url: str, verify_token: str, timeout: float) -> tuple[httpx.Request, str]:
    challenge = new_challenge()
    request = httpx.Request("GET", url, params=handshake_params(verify_token, challenge))
    request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
    return request, challenge


# The handshake goes through a bare transport, not a Client: httpx.Client logs every request URL
# at INFO, and this URL carries the verify token (Meta's protocol puts it in the query string).


def verify_endpoint(url: str, verify_token: str, timeout: float) -> str | None:
    """Run the handshake against ``url``; why it failed, or ``None``."""
    request, challenge = _handshake_request(url, verify_token, timeout)
    try:
        with httpx.HTTPTransport() as transport:
            response = transport.handle_request(request)
            try:
                body = response.read()
            finally:
                response.close()
    except httpx.HTTPError as exc:
        return _failure(exc)
    return handshake_problem(response.status_code, body.decode("utf-8", "replace"), challenge)


async def averify_endpoint(url: str, verify_token: str, timeout: float) -> str | None:
    request, challenge = _handshake_request(url, verify_token, timeout)
    try:
        async with httpx.AsyncHTTPTransport() as transport:
            response = await transport.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
    except httpx.HTTPError as exc:
        return _failure(exc)
    return handshake_problem(response.status_code, body.decode("utf-8", "replace"), challenge)
