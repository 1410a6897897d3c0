"""Meta's side door into ``permatoken serve``: ``/webhooks/meta`` and its deauthorize callback.

Public routes (Meta has no API key): what vouches for a request is the app secret's HMAC, checked
over the raw bytes before anything is parsed. The order in ``POST /webhooks/meta`` is

1. read at most ``MAX_BODY`` bytes (413 beyond), 2. find the app whose secret signed them
(401 no signature, 403 wrong one), 3. parse (400 if the signed body is not an envelope),
4. record every ``account_update`` change in one transaction (a replay inserts nothing),
5. answer 200, 6. wake the handler thread, which does the rest.

Nothing is changed by a refused request, and no answer here is ever a 500 or names a secret.
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .._exceptions import NotFoundError, PermatokenError
from .._secret import Secret
from ..settings import Settings
from ..store import Store
from ..store.providers import Deliveries
from .events import MalformedDelivery, changes_of, deauthorize_change
from .handling import DeliveryHandler, row_of_change
from .signatures import (
    SIGNATURE_HEADER,
    SignatureRefused,
    app_of_delivery,
    parse_signed_request,
    verify_token_matches,
)

log = logging.getLogger("permatoken.webhooks")

MAX_BODY = 1024 * 1024
FORWARD_TIMEOUT = 10.0
_CHALLENGE_MAX = 256


class _TooLarge(Exception):
    pass


class AppSecrets:
    """Every registered app's secret, re-read at most every ``ttl`` seconds."""

    def __init__(self, store: Store, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        self._at = -1e9
        self._secrets: dict[str, Secret] = {}

    def _load(self) -> dict[str, Secret]:
        found: dict[str, Secret] = {}
        for app in self.store.list_apps():
            try:
                found[app.id] = self.store.app_secret(app.id)
            except (NotFoundError, PermatokenError):
                continue
        return found

    async def get(self) -> dict[str, Secret]:
        if time.monotonic() - self._at > self.ttl:
            self._secrets = await run_in_threadpool(self._load)
            self._at = time.monotonic()
        return self._secrets

    def forget(self) -> None:
        self._at = -1e9


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _read(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class MetaWebhooks:
    """The three routes, over one store, one handler and the settings' verify token."""

    def __init__(self, settings: Settings, store: Store, handler: DeliveryHandler) -> None:
        self.settings = settings
        self.store = store
        self.handler = handler
        self.deliveries = Deliveries(store)
        self.secrets = AppSecrets(store)

    def routes(self) -> list[Route]:
        return [
            Route("/webhooks/meta", self.verify, methods=["GET"]),
            Route("/webhooks/meta", self.deliver, methods=["POST"]),
            Route("/webhooks/meta/deauthorize", self.deauthorize, methods=["POST"]),
        ]

    async def verify(self, request: Request) -> Response:
        expected = self.settings.webhook_verify_token
        if expected is None:
            log.warning(
                "webhook verification refused: PERMATOKEN_WEBHOOK_VERIFY_TOKEN is not set "
                "(docs/providers.md)"
            )
            return _refusal(404, "not_configured", "webhook verification is not configured")
        q = request.query_params
        challenge = q.get("hub.challenge", "")
        if q.get("hub.mode") != "subscribe" or not verify_token_matches(
            q.get("hub.verify_token"), expected
        ):
            log.warning("webhook verification refused: wrong hub.mode or hub.verify_token")
            return _refusal(403, "forbidden", "hub.verify_token does not match")
        if not (0 < len(challenge) <= _CHALLENGE_MAX) or not challenge.isascii():
            return _refusal(400, "bad_challenge", "hub.challenge is missing or not plain ASCII")
        return PlainTextResponse(challenge)

    async def deliver(self, request: Request) -> Response:
        try:
            body = await _read(request)
        except _TooLarge:
            return _refusal(413, "body_too_large", f"a delivery is at most {MAX_BODY} bytes")
        try:
            app_id = app_of_delivery(
                request.headers.get(SIGNATURE_HEADER), body, await self.secrets.get()
            )
        except SignatureRefused as exc:
            log.warning("webhook delivery refused: %s", exc.reason)
            status = 401 if exc.missing else 403
            return _refusal(status, "bad_signature", exc.reason)
        try:
            changes = changes_of(json.loads(body), app_id)
        except (MalformedDelivery, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, MalformedDelivery) else "the body is not JSON"
            return _refusal(400, "malformed", reason)
        if changes and not await self._record([row_of_change(c) for c in changes]):
            return _refusal(503, "unavailable", "cannot record the delivery now; retry")
        if self.settings.webhook_forward_url and not await self._forward(request, body):
            # Recorded already (a retry records nothing twice); Meta retries the forward.
            return _refusal(502, "forward_failed", "the application did not take the delivery")
        return JSONResponse({"received": len(changes)})

    async def _forward(self, request: Request, body: bytes) -> bool:
        """Hand the verified delivery, byte for byte and still signed, to the application."""
        import httpx

        url = self.settings.webhook_forward_url
        assert url is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k in (SIGNATURE_HEADER, "x-hub-signature", "content-type", "user-agent")
        }
        where = httpx.URL(url).host
        try:
            async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT) as client:
                answer = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("forwarding a Meta delivery to %s failed: %s", where, type(exc).__name__)
            return False
        if answer.status_code >= 300:
            log.warning(
                "forwarding a Meta delivery to %s failed: HTTP %d", where, answer.status_code
            )
            return False
        return True

    async def _record(self, rows: list[dict[str, object]]) -> bool:
        """Record durably, then wake the handler; False (Meta retries on 503) if the store failed."""
        try:
            await run_in_threadpool(self.deliveries.record, rows)
        except PermatokenError as exc:
            log.error("cannot record a Meta delivery: %s", exc.message)
            return False
        self.handler.wake()
        return True

    async def deauthorize(self, request: Request) -> Response:
        try:
            body = await _read(request)
        except _TooLarge:
            return _refusal(413, "body_too_large", f"a callback is at most {MAX_BODY} bytes")
        try:
            form = parse_qs(body.decode("ascii"), max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            form = {}
        values = form.get("signed_request") or []
        value = values[0] if values else None
        try:
            signed = parse_signed_request(value, await self.secrets.get())
            change = deauthorize_change(signed.app_id, signed.payload)
        except SignatureRefused as exc:
            log.warning("deauthorize callback refused: %s", exc.reason)
            return _refusal(401 if exc.missing else 403, "bad_signature", exc.reason)
        except MalformedDelivery as exc:
            return _refusal(400, "malformed", str(exc))
        if not await self._record([row_of_change(change)]):
            return _refusal(503, "unavailable", "cannot record the callback now; retry")
        return JSONResponse({"received": 1})


def public_paths() -> tuple[str, ...]:
    return ("/webhooks/meta", "/webhooks/meta/deauthorize")


__all__ = ["MAX_BODY", "AppSecrets", "MetaWebhooks", "public_paths"]
