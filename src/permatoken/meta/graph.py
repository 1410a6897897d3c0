"""Thin I/O over the Graph endpoints: :class:`GraphClient` (sync) and :class:`AsyncGraphClient`.

Both share :class:`BaseGraphClient`, which turns a :class:`~permatoken.meta.endpoints.GraphCall`
into httpx arguments and an httpx response into a payload or a :class:`GraphError` (what an
answer means is decided without I/O in :mod:`permatoken.meta.answers`); the two subclasses only
send. Every error, including transport failures, is a :class:`GraphError` whose ``error``
attribute is a :class:`GraphErrorInfo`. A failure after the request may have
reached Meta (a read timeout, a dropped connection) sets ``ambiguous=True``: a mint or a
refresh may have happened. The usage headers of the latest response are in ``last_usage``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from .._exceptions import GraphError
from .._secret import Secret
from ..graph_defaults import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION
from . import endpoints as ep
from ._logs import guard_httpx_logs
from .answers import read_answer, scrub, transport_failure
from .bounded import (
    BAD_READS,
    MAX_RESPONSE_BYTES,
    RESPONSE_DEADLINE,
    BoundedResponse,
    aread_bounded,
    bad_read_info,
    read_bounded,
)
from .debug import DebugTokenResult
from .errors import GraphErrorInfo, graph_error
from .usage import Usage, parse_usage

__all__ = ["AsyncGraphClient", "BaseGraphClient", "GraphClient"]

T = TypeVar("T")
DEFAULT_TIMEOUT = 15.0
log = logging.getLogger(__name__)

guard_httpx_logs()  # before any client exists, so no request is ever logged unredacted


class BaseGraphClient:
    """Everything but the sending: URLs, headers, error translation, usage bookkeeping."""

    def __init__(
        self,
        base_url: str = DEFAULT_GRAPH_URL,
        version: str = DEFAULT_GRAPH_VERSION,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        response_deadline: float = RESPONSE_DEADLINE,
    ) -> None:
        version = version.strip().strip("/")
        if version and not version.startswith("v"):
            version = "v" + version
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.timeout = timeout
        self.clock = clock
        #: Bounds on every answer read (see :mod:`permatoken.meta.bounded`); the HTTP issuers
        #: (OAuth2, BSP login) read their token endpoints within the same bounds.
        self.max_response_bytes = max_response_bytes
        self.response_deadline = response_deadline
        self.last_usage: Usage | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, version={self.version!r})"

    def _url(self, path: str) -> str:
        prefix = f"{self.base_url}/{self.version}" if self.version else self.base_url
        return f"{prefix}/{path}"

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _unix_now(self) -> int:
        return int(self.clock())

    def _request_args(self, request: ep.GraphRequest) -> dict[str, Any]:
        args: dict[str, Any] = {
            "method": request.method,
            "url": self._url(request.path),
            "params": request.query(),
            "headers": request.headers(),
        }
        body = request.body()
        if body is not None:
            args["data"] = body
        return args

    def _where(self, request: ep.GraphRequest) -> str:
        return f"{request.method} /{request.path}"

    def _bounds(self) -> dict[str, Any]:
        return {"max_bytes": self.max_response_bytes, "deadline": self.response_deadline}

    def _payload(self, request: ep.GraphRequest, response: BoundedResponse) -> Any:
        """The decoded JSON of a successful response; raise :class:`GraphError` otherwise."""
        usage = parse_usage(response.headers)
        self.last_usage = usage
        log.debug("%s -> %s", self._where(request), response.status_code)
        payload, info = read_answer(response)
        if info is not None:
            raise self._error(request, info, usage=usage)
        return payload

    def _error(
        self,
        request: ep.GraphRequest,
        info: GraphErrorInfo,
        *,
        usage: Usage | None = None,
        ambiguous: bool = False,
    ) -> GraphError:
        info = scrub(info, request.secret_values())
        message = f"{self._where(request)} failed: {info.describe()}"
        return graph_error(info, message, endpoint=request.path, ambiguous=ambiguous, usage=usage)

    def _failed_read(self, request: ep.GraphRequest, exc: Exception) -> GraphError:
        """An answer that broke a bound, or a request httpx could not even build."""
        info, ambiguous = bad_read_info(exc)
        return self._error(request, info, ambiguous=ambiguous)

    def _transport_error(self, request: ep.GraphRequest, exc: httpx.HTTPError) -> GraphError:
        info, ambiguous = transport_failure(exc)
        return self._error(request, info, ambiguous=ambiguous)


class GraphClient(BaseGraphClient):
    """Synchronous Graph client over an ``httpx.Client`` (injected or owned)."""

    def __init__(
        self,
        base_url: str = DEFAULT_GRAPH_URL,
        version: str = DEFAULT_GRAPH_VERSION,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        response_deadline: float = RESPONSE_DEADLINE,
    ) -> None:
        super().__init__(
            base_url,
            version,
            timeout=timeout,
            clock=clock,
            max_response_bytes=max_response_bytes,
            response_deadline=response_deadline,
        )
        self._owns_client = client is None
        self._client = client or httpx.Client(transport=transport, timeout=timeout)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, call: ep.GraphCall[T]) -> T:
        """Send one prepared call and parse its answer."""
        try:
            response = read_bounded(
                self._client, **self._bounds(), **self._request_args(call.request)
            )
        except BAD_READS as exc:
            raise self._failed_read(call.request, exc) from exc
        except httpx.HTTPError as exc:
            raise self._transport_error(call.request, exc) from exc
        return call.parse(self._payload(call.request, response), self._now())

    def debug_token(
        self, input_token: Secret, *, app_id: str, app_secret: Secret
    ) -> DebugTokenResult:
        return self.call(ep.debug_token(input_token, app_id=app_id, app_secret=app_secret))

    def exchange_token(
        self, token: Secret, *, app_id: str, app_secret: Secret, set_60_days: bool
    ) -> ep.IssuedToken:
        return self.call(
            ep.exchange_token(token, app_id=app_id, app_secret=app_secret, set_60_days=set_60_days)
        )

    def mint_system_user_token(
        self,
        system_user_id: str,
        *,
        caller_token: Secret,
        app_id: str,
        app_secret: Secret,
        scopes: Iterable[str] = ep.WHATSAPP_SCOPES,
        expiring: bool,
        timed_proof: bool = False,
    ) -> ep.IssuedToken:
        return self.call(
            ep.mint_system_user_token(
                system_user_id,
                caller_token=caller_token,
                app_id=app_id,
                app_secret=app_secret,
                scopes=scopes,
                expiring=expiring,
                timed_proof=timed_proof,
                now=self._unix_now(),
            )
        )

    def install_app(
        self, system_user_id: str, *, caller_token: Secret, app_id: str, app_secret: Secret
    ) -> bool:
        return self.call(
            ep.install_app(
                system_user_id, caller_token=caller_token, app_id=app_id, app_secret=app_secret
            )
        )

    def revoke_token(
        self, token: Secret, *, caller_token: Secret, app_id: str, app_secret: Secret
    ) -> None:
        self.call(
            ep.revoke_token(token, caller_token=caller_token, app_id=app_id, app_secret=app_secret)
        )

    def exchange_code(
        self, code: Secret, *, app_id: str, app_secret: Secret, redirect_uri: str | None = None
    ) -> ep.IssuedToken:
        return self.call(
            ep.exchange_code(code, app_id=app_id, app_secret=app_secret, redirect_uri=redirect_uri)
        )

    def app_token(self, app_id: str, app_secret: Secret) -> ep.IssuedToken:
        return self.call(ep.app_token(app_id, app_secret))

    def get_phone_number(
        self,
        phone_number_id: str,
        token: Secret,
        app_secret: Secret | None = None,
        *,
        fields: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        return self.call(
            ep.get_object(phone_number_id, token, app_secret=app_secret, fields=fields)
        )

    def list_phone_numbers(
        self, waba_id: str, token: Secret, app_secret: Secret | None = None
    ) -> list[dict[str, Any]]:
        return self.call(ep.list_phone_numbers(waba_id, token, app_secret=app_secret))

    def me(
        self,
        token: Secret,
        fields: Iterable[str] = ("id", "name"),
        *,
        app_secret: Secret | None = None,
    ) -> dict[str, Any]:
        return self.call(ep.get_object("me", token, app_secret=app_secret, fields=fields))

    def subscribe_app(self, waba_id: str, token: Secret, app_secret: Secret | None = None) -> bool:
        return self.call(ep.subscribe_app(waba_id, token, app_secret=app_secret))


class AsyncGraphClient(BaseGraphClient):
    """Asynchronous Graph client over an ``httpx.AsyncClient`` (injected or owned)."""

    def __init__(
        self,
        base_url: str = DEFAULT_GRAPH_URL,
        version: str = DEFAULT_GRAPH_VERSION,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        response_deadline: float = RESPONSE_DEADLINE,
    ) -> None:
        super().__init__(
            base_url,
            version,
            timeout=timeout,
            clock=clock,
            max_response_bytes=max_response_bytes,
            response_deadline=response_deadline,
        )
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(transport=transport, timeout=timeout)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def call(self, call: ep.GraphCall[T]) -> T:
        """Send one prepared call and parse its answer."""
        try:
            response = await aread_bounded(
                self._client, **self._bounds(), **self._request_args(call.request)
            )
        except BAD_READS as exc:
            raise self._failed_read(call.request, exc) from exc
        except httpx.HTTPError as exc:
            raise self._transport_error(call.request, exc) from exc
        return call.parse(self._payload(call.request, response), self._now())

    async def debug_token(
        self, input_token: Secret, *, app_id: str, app_secret: Secret
    ) -> DebugTokenResult:
        return await self.call(ep.debug_token(input_token, app_id=app_id, app_secret=app_secret))

    async def exchange_token(
        self, token: Secret, *, app_id: str, app_secret: Secret, set_60_days: bool
    ) -> ep.IssuedToken:
        return await self.call(
            ep.exchange_token(token, app_id=app_id, app_secret=app_secret, set_60_days=set_60_days)
        )

    async def mint_system_user_token(
        self,
        system_user_id: str,
        *,
        caller_token: Secret,
        app_id: str,
        app_secret: Secret,
        scopes: Iterable[str] = ep.WHATSAPP_SCOPES,
        expiring: bool,
        timed_proof: bool = False,
    ) -> ep.IssuedToken:
        return await self.call(
            ep.mint_system_user_token(
                system_user_id,
                caller_token=caller_token,
                app_id=app_id,
                app_secret=app_secret,
                scopes=scopes,
                expiring=expiring,
                timed_proof=timed_proof,
                now=self._unix_now(),
            )
        )

    async def install_app(
        self, system_user_id: str, *, caller_token: Secret, app_id: str, app_secret: Secret
    ) -> bool:
        return await self.call(
            ep.install_app(
                system_user_id, caller_token=caller_token, app_id=app_id, app_secret=app_secret
            )
        )

    async def revoke_token(
        self, token: Secret, *, caller_token: Secret, app_id: str, app_secret: Secret
    ) -> None:
        await self.call(
            ep.revoke_token(token, caller_token=caller_token, app_id=app_id, app_secret=app_secret)
        )

    async def exchange_code(
        self, code: Secret, *, app_id: str, app_secret: Secret, redirect_uri: str | None = None
    ) -> ep.IssuedToken:
        return await self.call(
            ep.exchange_code(code, app_id=app_id, app_secret=app_secret, redirect_uri=redirect_uri)
        )

    async def app_token(self, app_id: str, app_secret: Secret) -> ep.IssuedToken:
        return await self.call(ep.app_token(app_id, app_secret))

    async def get_phone_number(
        self,
        phone_number_id: str,
        token: Secret,
        app_secret: Secret | None = None,
        *,
        fields: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        return await self.call(
            ep.get_object(phone_number_id, token, app_secret=app_secret, fields=fields)
        )

    async def list_phone_numbers(
        self, waba_id: str, token: Secret, app_secret: Secret | None = None
    ) -> list[dict[str, Any]]:
        return await self.call(ep.list_phone_numbers(waba_id, token, app_secret=app_secret))

    async def me(
        self,
        token: Secret,
        fields: Iterable[str] = ("id", "name"),
        *,
        app_secret: Secret | None = None,
    ) -> dict[str, Any]:
        return await self.call(ep.get_object("me", token, app_secret=app_secret, fields=fields))
