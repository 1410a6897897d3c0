"""``httpx.Auth`` that injects the current token and recovers once from a dead one.

Plug it into any httpx client (``httpx.Client(auth=PermatokenAuth(source))``), or into a
library that accepts one (pywa: ``WhatsApp(session=httpx.Client(auth=...))``).

On an error response the body is classified with :func:`permatoken.meta.classify_graph_error`
(by Graph ``code``, never by HTTP status alone). Only a dead token (190 family) triggers
recovery: the version that was used is reported (single-flight per version in the source; the
broker or the engine collapses reports across processes), and the request is sent again, once,
with the next version. Throttling, permission and every other error pass through untouched.
If recovery fails, the original response is returned and the reason is attached to
``response.extensions["permatoken_recovery_error"]``.

Nothing here logs a token: only credential names and version numbers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, Generator

import anyio
import anyio.to_thread
import httpx

from .._exceptions import InputError, PermatokenError
from ..meta.errors import ErrorKind, GraphErrorInfo, classify_graph_error
from .models import CachedToken
from .source import AsyncTokenSource, TokenSource

__all__ = ["RECOVERY_ERROR", "RETRIED", "PermatokenAuth", "dead_token_info"]

log = logging.getLogger(__name__)

#: ``response.extensions`` key: why a dead token could not be replaced (an exception).
RECOVERY_ERROR = "permatoken_recovery_error"
#: ``response.extensions`` key: True on the response of the one retry after a recovery.
RETRIED = "permatoken_retried"


def dead_token_info(response: httpx.Response) -> GraphErrorInfo | None:
    """The classification of ``response`` if it says the token is dead, else None (pure)."""
    if response.status_code < 400:
        return None
    info = classify_graph_error(response.status_code, response.headers, response.content)
    return info if info.kind is ErrorKind.TOKEN_DEAD else None


def _authorize(request: httpx.Request, token: CachedToken) -> None:
    request.headers["Authorization"] = "Bearer " + token.value.reveal()


class PermatokenAuth(httpx.Auth):
    """Bearer auth from a :class:`TokenSource` (sync) or :class:`AsyncTokenSource` (async).

    A sync source also works in async clients (its blocking report runs in a worker thread);
    an async source works only in async clients.
    """

    #: Only error bodies are read here (they decide recovery); success bodies are left to the
    #: caller, so streaming downloads still stream.
    requires_response_body = False

    def __init__(self, source: TokenSource | AsyncTokenSource) -> None:
        self.source = source
        self._sync_lock = threading.Lock()
        self._async_lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"PermatokenAuth({self.source!r})"

    # --- sync -------------------------------------------------------------------------
    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        source = self.source
        if not isinstance(source, TokenSource):
            raise InputError("an AsyncTokenSource can only authenticate an httpx.AsyncClient")
        token = source.current()
        _authorize(request, token)
        response = yield request
        if response.status_code < 400:
            return
        response.read()
        info = dead_token_info(response)
        if info is None:
            return
        with self._sync_lock:
            fresh = self._recover_sync(source, token, info, response)
        if fresh is None:
            return
        _authorize(request, fresh)
        retried = yield request
        retried.extensions[RETRIED] = True

    def _recover_sync(
        self,
        source: TokenSource,
        token: CachedToken,
        info: GraphErrorInfo,
        response: httpx.Response,
    ) -> CachedToken | None:
        try:
            fresh = source.report_dead(token.version, info.code, info.subcode)
        except PermatokenError as exc:
            return self._failed(token, exc, response)
        return self._usable(token, fresh, response)

    # --- async ------------------------------------------------------------------------
    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        source = self.source
        token = await source.get() if isinstance(source, AsyncTokenSource) else source.current()
        _authorize(request, token)
        response = yield request
        if response.status_code < 400:
            return
        await response.aread()
        info = dead_token_info(response)
        if info is None:
            return
        if self._async_lock is None:
            self._async_lock = anyio.Lock()
        async with self._async_lock:
            fresh = await self._recover_async(token, info, response)
        if fresh is None:
            return
        _authorize(request, fresh)
        retried = yield request
        retried.extensions[RETRIED] = True

    async def _recover_async(
        self, token: CachedToken, info: GraphErrorInfo, response: httpx.Response
    ) -> CachedToken | None:
        source = self.source
        try:
            if isinstance(source, AsyncTokenSource):
                fresh = await source.report_dead(token.version, info.code, info.subcode)
            else:
                fresh = await anyio.to_thread.run_sync(
                    source.report_dead, token.version, info.code, info.subcode
                )
        except PermatokenError as exc:
            return self._failed(token, exc, response)
        return self._usable(token, fresh, response)

    # --- shared -----------------------------------------------------------------------
    def _usable(
        self, token: CachedToken, fresh: CachedToken, response: httpx.Response
    ) -> CachedToken | None:
        if fresh.version > token.version:
            return fresh
        why = InputError(f"{token.name}: no version newer than {token.version} is available")
        return self._failed(token, why, response)

    @staticmethod
    def _failed(token: CachedToken, exc: PermatokenError, response: httpx.Response) -> None:
        log.warning(
            "%s: version %d is dead and could not be replaced: %s",
            token.name,
            token.version,
            exc.message,
        )
        response.extensions[RECOVERY_ERROR] = exc
        return None
