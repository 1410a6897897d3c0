"""A small WhatsApp Cloud API client on httpx and :class:`PermatokenAuth` (sync and async).

Results are typed (:class:`SentMessage`, :class:`PhoneNumberInfo`); failures are typed
exceptions from the shared Graph classification (:mod:`permatoken.client.errors`). A dead
token is recovered once inside the auth; a throttle never triggers a renewal. A request that
may have reached Meta without an answer (read timeout, dropped connection) is not repeated
unless ``retry_ambiguous=True``, because repeating a send can deliver a message twice.

The environment is read only behind ``trust_env``, with httpx's meaning: ``trust_env=True`` (the
default, as in httpx) takes a ``graph_url`` / ``graph_version`` that is not given from
permatoken's settings (``PERMATOKEN_GRAPH_URL``, ``PERMATOKEN_GRAPH_VERSION``, or the config file
``PERMATOKEN_HOME`` / ``PERMATOKEN_CONFIG`` names) and lets httpx read its own variables
(proxies, ``SSL_CERT_FILE``, ``.netrc``); ``trust_env=False`` reads no environment at all and
defaults to Meta's Graph URL and permatoken's Graph version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import httpx

from .._exceptions import InputError
from ..graph_defaults import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION
from ..meta.errors import ErrorKind, classify_graph_error
from .auth import RECOVERY_ERROR, PermatokenAuth
from .errors import UnexpectedAnswerError, WhatsAppTransportError, graph_exception
from .messages import (
    media_payload,
    parse_phone_number,
    parse_sent,
    reaction_payload,
    read_payload,
    template_payload,
    text_payload,
)
from .models import PhoneNumberInfo, SentMessage
from .ratelimit import RateLimiter
from .source import AsyncTokenSource, TokenSource

__all__ = ["AsyncWhatsAppClient", "WhatsAppClient"]

SEND = "POST /{phone-number-id}/messages"
PHONE = "GET /{phone-number-id}"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Errors raised before any byte of the request left: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _WhatsAppBase:
    """URLs, rate limiting and answer interpretation shared by both clients (no I/O)."""

    def __init__(
        self,
        phone_number_id: str | None,
        graph_url: str | None,
        graph_version: str | None,
        rate_limit: RateLimiter | float | None,
        retry_ambiguous: bool,
        trust_env: bool,
    ) -> None:
        if (graph_url is None or graph_version is None) and trust_env:
            from ..settings import load_settings

            settings = load_settings()
            graph_url = graph_url or settings.graph_url
            graph_version = graph_version or settings.graph_version
        graph_url = DEFAULT_GRAPH_URL if graph_url is None else graph_url
        graph_version = DEFAULT_GRAPH_VERSION if graph_version is None else graph_version
        self.trust_env = trust_env
        self.base_url = f"{graph_url.rstrip('/')}/{graph_version.strip('/')}"
        self.phone_number_id = phone_number_id
        if isinstance(rate_limit, RateLimiter) or rate_limit is None:
            self.limiter: RateLimiter | None = rate_limit
        else:
            self.limiter = RateLimiter(float(rate_limit))
        self.retry_ambiguous = retry_ambiguous

    def __repr__(self) -> str:
        name, phone = type(self).__name__, self.phone_number_id
        return f"{name}(base_url={self.base_url!r}, phone_number_id={phone!r})"

    def _phone(self, override: str | None) -> str:
        phone = override or self.phone_number_id
        if not phone:
            raise InputError("no phone_number_id: give one to the client or to the call")
        return phone

    def _answer(self, response: httpx.Response, endpoint: str, phone: str) -> Any:
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise UnexpectedAnswerError(
                    f"{endpoint}: HTTP {response.status_code} with a body that is not JSON",
                    endpoint=endpoint,
                ) from None
        info = classify_graph_error(response.status_code, response.headers, response.content)
        if info.kind is ErrorKind.THROTTLED and info.code == 130429 and self.limiter is not None:
            self.limiter.pause(phone, info.retry_after or 1.0)
        recovery = response.extensions.get(RECOVERY_ERROR)
        context: dict[str, Any] = {"phone_number_id": phone}
        if info.kind is ErrorKind.TOKEN_DEAD:
            context["recovery"] = getattr(recovery, "message", None)
        raise graph_exception(info, endpoint=endpoint, **context)

    def _may_retry(self, exc: httpx.TransportError, idempotent: bool) -> bool:
        return isinstance(exc, _NOT_SENT) or idempotent or self.retry_ambiguous

    @staticmethod
    def _transport_error(exc: httpx.TransportError, endpoint: str) -> WhatsAppTransportError:
        ambiguous = not isinstance(exc, _NOT_SENT)
        what = "Meta may or may not have accepted it" if ambiguous else "nothing was sent"
        return WhatsAppTransportError(
            f"{endpoint}: no answer from the Graph API ({type(exc).__name__}); {what}",
            hint="retry only if a duplicate is acceptable"
            if ambiguous
            else "check network access to the Graph URL",
            endpoint=endpoint,
            ambiguous=ambiguous,
        )


class WhatsAppClient(_WhatsAppBase):
    """Synchronous client. ``tokens`` is a :class:`TokenSource`; ``rate_limit`` is messages per
    second per phone number (a number or a :class:`RateLimiter`; None disables pacing).

    ``trust_env=True`` (default) fills a missing ``graph_url`` / ``graph_version`` from the
    ``PERMATOKEN_*`` settings and lets httpx read its environment; ``False`` reads none of it
    (see the module docstring)."""

    def __init__(
        self,
        tokens: TokenSource,
        phone_number_id: str | None = None,
        *,
        graph_url: str | None = None,
        graph_version: str | None = None,
        rate_limit: RateLimiter | float | None = None,
        retry_ambiguous: bool = False,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        trust_env: bool = True,
    ) -> None:
        super().__init__(
            phone_number_id, graph_url, graph_version, rate_limit, retry_ambiguous, trust_env
        )
        self.tokens = tokens
        self.auth = PermatokenAuth(tokens)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self.auth,
            transport=transport,
            timeout=timeout,
            trust_env=trust_env,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WhatsAppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        phone: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Any:
        for attempt in (1, 2):
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                if attempt == 1 and self._may_retry(exc, idempotent):
                    continue
                raise self._transport_error(exc, endpoint) from exc
            return self._answer(response, endpoint, phone)
        raise AssertionError("unreachable")

    def _send(self, payload: dict[str, Any], phone_number_id: str | None) -> SentMessage:
        phone = self._phone(phone_number_id)
        if self.limiter is not None:
            self.limiter.acquire(phone)
        return parse_sent(self._call("POST", f"/{phone}/messages", SEND, phone, json=payload))

    def send_text(
        self,
        to: str,
        text: str,
        *,
        preview_url: bool = False,
        reply_to: str | None = None,
        phone_number_id: str | None = None,
    ) -> SentMessage:
        return self._send(
            text_payload(to, text, preview_url=preview_url, reply_to=reply_to), phone_number_id
        )

    def send_template(
        self,
        to: str,
        name: str,
        language: str = "en_US",
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        reply_to: str | None = None,
        phone_number_id: str | None = None,
    ) -> SentMessage:
        return self._send(
            template_payload(to, name, language, components, reply_to=reply_to), phone_number_id
        )

    def send_media(
        self,
        to: str,
        kind: str,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        reply_to: str | None = None,
        phone_number_id: str | None = None,
    ) -> SentMessage:
        payload = media_payload(
            to,
            kind,
            media_id=media_id,
            link=link,
            caption=caption,
            filename=filename,
            reply_to=reply_to,
        )
        return self._send(payload, phone_number_id)

    def send_reaction(
        self, to: str, message_id: str, emoji: str, *, phone_number_id: str | None = None
    ) -> SentMessage:
        return self._send(reaction_payload(to, message_id, emoji), phone_number_id)

    def mark_as_read(self, message_id: str, *, phone_number_id: str | None = None) -> bool:
        phone = self._phone(phone_number_id)
        data = self._call(
            "POST",
            f"/{phone}/messages",
            SEND,
            phone,
            json=read_payload(message_id),
            idempotent=True,
        )
        return bool(isinstance(data, dict) and data.get("success"))

    def get_phone_number(
        self, phone_number_id: str | None = None, *, fields: Sequence[str] | None = None
    ) -> PhoneNumberInfo:
        phone = self._phone(phone_number_id)
        params = {"fields": ",".join(fields)} if fields else None
        return parse_phone_number(
            self._call("GET", f"/{phone}", PHONE, phone, params=params, idempotent=True)
        )


class AsyncWhatsAppClient(_WhatsAppBase):
    """Asynchronous client over an :class:`AsyncTokenSource` (or a sync :class:`TokenSource`)."""

    def __init__(
        self,
        tokens: AsyncTokenSource | TokenSource,
        phone_number_id: str | None = None,
        *,
        graph_url: str | None = None,
        graph_version: str | None = None,
        rate_limit: RateLimiter | float | None = None,
        retry_ambiguous: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limits: httpx.Limits | None = None,
        trust_env: bool = True,
    ) -> None:
        super().__init__(
            phone_number_id, graph_url, graph_version, rate_limit, retry_ambiguous, trust_env
        )
        self.tokens = tokens
        self.auth = PermatokenAuth(tokens)
        limits = limits or httpx.Limits(max_connections=100)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self.auth,
            transport=transport,
            timeout=timeout,
            limits=limits,
            trust_env=trust_env,
        )
        # httpcore's pool rescans its whole queue on every change: with thousands of concurrent
        # sends that is quadratic. Waiting here instead keeps its queue as short as the pool.
        self._max_in_flight = limits.max_connections or 100
        self._in_flight: anyio.Semaphore | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWhatsAppClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        phone: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = False,
        paced: bool = False,
    ) -> Any:
        if self._in_flight is None:
            self._in_flight = anyio.Semaphore(self._max_in_flight)
        for attempt in (1, 2):
            try:
                async with self._in_flight:
                    # Pace inside the slot: the send follows the wait directly, instead of
                    # queueing behind other requests and reaching Meta in a clump.
                    if paced and self.limiter is not None:
                        await self.limiter.acquire_async(phone)
                    response = await self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                if attempt == 1 and self._may_retry(exc, idempotent):
                    continue
                raise self._transport_error(exc, endpoint) from exc
            return self._answer(response, endpoint, phone)
        raise AssertionError("unreachable")

    async def _send(self, payload: dict[str, Any], phone_number_id: str | None) -> SentMessage:
        phone = self._phone(phone_number_id)
        data = await self._call("POST", f"/{phone}/messages", SEND, phone, json=payload, paced=True)
        return parse_sent(data)

    async def send_text(
        self,
        to: str,
        text: str,
        *,
        preview_url: bool = False,
        reply_to: str | None = None,
        phone_number_id: str | None = None,
    ) -> SentMessage:
        return await self._send(
            text_payload(to, text, preview_url=preview_url, reply_to=reply_to), phone_number_id
        )

    async def send_template(
        self,
        to: str,
        name: str,
        language: str = "en_US",
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        reply_to: str | None = None,
        phone_number_id: str | None = None,
    ) -> SentMessage:
        payload = template_payload(to, name, language, components, reply_to=reply_to)
        return await self._send(payload, phone_number_id)

    async def send_media(
        self,
        to: str,
        kind: str,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        reply_to: str | None = None,
        phone_number_id: str | None = None,
    ) -> SentMessage:
        payload = media_payload(
            to,
            kind,
            media_id=media_id,
            link=link,
            caption=caption,
            filename=filename,
            reply_to=reply_to,
        )
        return await self._send(payload, phone_number_id)

    async def send_reaction(
        self, to: str, message_id: str, emoji: str, *, phone_number_id: str | None = None
    ) -> SentMessage:
        return await self._send(reaction_payload(to, message_id, emoji), phone_number_id)

    async def mark_as_read(self, message_id: str, *, phone_number_id: str | None = None) -> bool:
        phone = self._phone(phone_number_id)
        data = await self._call(
            "POST",
            f"/{phone}/messages",
            SEND,
            phone,
            json=read_payload(message_id),
            idempotent=True,
        )
        return bool(isinstance(data, dict) and data.get("success"))

    async def get_phone_number(
        self, phone_number_id: str | None = None, *, fields: Sequence[str] | None = None
    ) -> PhoneNumberInfo:
        phone = self._phone(phone_number_id)
        params = {"fields": ",".join(fields)} if fields else None
        data = await self._call("GET", f"/{phone}", PHONE, phone, params=params, idempotent=True)
        return parse_phone_number(data)
