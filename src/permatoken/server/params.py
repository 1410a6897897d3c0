"""What a route reads from its request besides the body: the broker and the query parameters.

Every query parameter is checked the same way on every route: an unknown one is refused (a typo
must not be silently ignored), a number out of range or a string of the wrong length is a 422
``invalid_parameter`` that names the parameter.
"""

from __future__ import annotations

from starlette.requests import Request

from .broker import Broker
from .errors import ApiError


def broker_of(request: Request) -> Broker:
    """The broker of the app that received ``request``."""
    return request.app.state.broker  # type: ignore[no-any-return]


def only_params(request: Request, *allowed: str) -> None:
    """422 for a query parameter the route does not know (a typo must not be silently ignored)."""
    if request.scope.get("query_string"):
        unknown = [k for k in request.query_params if k not in allowed]
        if unknown:
            raise ApiError(
                422,
                "invalid_parameter",
                f"unknown query parameter {unknown[0][:40]!r}"
                + (
                    f"; this route accepts {', '.join(allowed)}"
                    if allowed
                    else "; this route takes none"
                ),
            )


def int_param(
    request: Request, key: str, *, lo: float, hi: float, number: type = int
) -> float | None:
    """The query parameter ``key`` as a ``number`` within ``[lo, hi]``; None when absent."""
    raw = request.query_params.get(key)
    if raw is None:
        return None
    try:
        value = number(raw)
    except ValueError:
        raise ApiError(
            422, "invalid_parameter", f"query parameter {key} must be a number"
        ) from None
    if not (lo <= value <= hi):
        raise ApiError(
            422, "invalid_parameter", f"query parameter {key} must be between {lo:g} and {hi:g}"
        )
    return value  # type: ignore[no-any-return]


def str_param(request: Request, key: str, max_len: int) -> str | None:
    """The query parameter ``key`` of 1 to ``max_len`` characters; None when absent."""
    value = request.query_params.get(key)
    if value is None:
        return None
    if not value or len(value) > max_len:
        raise ApiError(
            422, "invalid_parameter", f"query parameter {key} must be 1-{max_len} characters"
        )
    return value


__all__ = ["broker_of", "int_param", "only_params", "str_param"]
