"""The query-parameter rules every route shares (server/params.py), without a server."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from permatoken.server.errors import ApiError
from permatoken.server.params import int_param, only_params, str_param


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "query_string": query.encode(), "headers": []})


def _refusal(call: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()  # type: ignore[operator]
    assert info.value.status == 422 and info.value.code == "invalid_parameter"
    return info.value


def test_an_unknown_query_parameter_is_refused_with_the_known_ones_named() -> None:
    """A typo is a 422 that names it and what the route accepts, never silently ignored."""
    only_params(_request("limit=3&after=x"), "limit", "after")
    only_params(_request(""))
    exc = _refusal(lambda: only_params(_request("limt=3"), "limit", "after"))
    assert exc.message == "unknown query parameter 'limt'; this route accepts limit, after"
    exc = _refusal(lambda: only_params(_request("x=1")))
    assert exc.message == "unknown query parameter 'x'; this route takes none"


def test_a_number_outside_its_range_or_not_a_number_is_refused() -> None:
    """`int_param` returns the value within [lo, hi], None when absent, a 422 otherwise."""
    assert int_param(_request("limit=1000"), "limit", lo=1, hi=1000) == 1000
    assert int_param(_request(""), "limit", lo=1, hi=1000) is None
    assert int_param(_request("wait=2.5"), "wait", lo=0, hi=60, number=float) == 2.5
    exc = _refusal(lambda: int_param(_request("limit=1001"), "limit", lo=1, hi=1000))
    assert exc.message == "query parameter limit must be between 1 and 1000"
    exc = _refusal(lambda: int_param(_request("limit=2.5"), "limit", lo=1, hi=1000))
    assert exc.message == "query parameter limit must be a number"


def test_a_string_parameter_must_be_one_to_max_characters() -> None:
    """`str_param`: absent is None; empty or longer than max_len is a 422."""
    assert str_param(_request("tenant=acme"), "tenant", 64) == "acme"
    assert str_param(_request(""), "tenant", 64) is None
    assert str_param(_request("tenant=" + "x" * 64), "tenant", 64) == "x" * 64
    for query in ("tenant=", "tenant=" + "x" * 65):
        exc = _refusal(lambda q=query: str_param(_request(q), "tenant", 64))
        assert exc.message == "query parameter tenant must be 1-64 characters"
