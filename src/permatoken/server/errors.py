"""Every error the API returns: ``{"error": {"code": …, "message": …}}``, never a secret."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._exceptions import (
    AlreadyExistsError,
    AuthError,
    ConflictError,
    CryptoError,
    GraphError,
    InputError,
    KmsUnavailableError,
    NotFoundError,
    PermatokenError,
    RotationError,
    StoreUnreachableError,
)
from .._secret import redact

log = logging.getLogger("permatoken.server")


class ApiError(Exception):
    """An error answer the API chose to give."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": redact(message)}}, status_code=status, headers=headers
    )


# Most specific first.
_STATUS: list[tuple[type[PermatokenError], int]] = [
    (AuthError, 401),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (ConflictError, 409),
    (InputError, 422),
    (StoreUnreachableError, 503),
    (KmsUnavailableError, 503),  # a dependency down, as a database is: retry later
    (GraphError, 502),
    (RotationError, 502),
    (CryptoError, 500),
]


def status_for(exc: PermatokenError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PermatokenError)
    status = status_for(exc)
    if status >= 500:
        log.warning(
            "%s %s failed: %s (%s)",
            request.method,
            request.url.path,
            type(exc).__name__,
            redact(exc.message),
        )
    message = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    return error_response(status, exc.code, message)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    400: "bad_request",
    413: "payload_too_large",
}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such route", 405: "method not allowed on this route"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error(
        "%s %s: internal error %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(500, "internal_error", "internal error; the server log has details")


HANDLERS: dict[Any, Any] = {
    ApiError: api_error,
    PermatokenError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

__all__ = ["HANDLERS", "ApiError", "error_response", "status_for"]
