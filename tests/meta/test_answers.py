"""``meta.answers``: what an answer, or a failure to get one, means (pure, no client).

tests/meta/test_graph.py proves the common cases through the client; these pin the corners of
the decision itself.
"""

from __future__ import annotations

import httpx
import pytest

from permatoken.meta import ErrorKind, GraphErrorInfo
from permatoken.meta.answers import NOT_SENT, read_answer, scrub, transport_failure
from permatoken.meta.bounded import BoundedResponse

JSON = {"content-type": "application/json"}


def answer(status: int, content: bytes, headers: dict[str, str] | None = None) -> BoundedResponse:
    return BoundedResponse(status, httpx.Headers(headers or {}), content)


def test_a_json_success_is_its_payload() -> None:
    assert read_answer(answer(200, b'{"id": "1"}', JSON)) == ({"id": "1"}, None)


def test_a_success_without_a_content_type_is_still_read_as_json() -> None:
    """Only a type that is never JSON (HTML, XML) condemns an answer; none said is fine."""
    assert read_answer(answer(200, b"[1, 2]")) == ([1, 2], None)


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (answer(200, b"", JSON), "the response body is not JSON"),
        (answer(204, b"", {}), "the response body is not JSON"),
        (answer(302, b'{"id": "1"}', JSON), "an unexpected HTTP 302"),
        (answer(200, b'{"a": 1, "a": 2}', JSON), "ambiguous JSON: an object repeats a key"),
        (answer(200, b'{"id": "1"}', {"content-type": "text/xml"}), "a 200 answer of type"),
    ],
)
def test_an_answer_that_is_not_what_was_promised_is_unknown(
    response: BoundedResponse, problem: str
) -> None:
    """Unknown is never retried blindly; the problem is named, never the body itself."""
    payload, info = read_answer(response)
    assert payload is None and info is not None
    assert info.kind is ErrorKind.UNKNOWN and info.message.startswith(problem)
    assert info.http_status == response.status_code


def test_an_error_object_in_a_2xx_is_classified_like_any_error() -> None:
    body = b'{"error": {"message": "Invalid OAuth access token.", "code": 190}}'
    payload, info = read_answer(answer(200, body, JSON))
    assert payload is None and info is not None and info.kind is ErrorKind.TOKEN_DEAD


def test_a_url_httpx_cannot_speak_is_a_bad_request_that_was_never_sent() -> None:
    """UnsupportedProtocol: a wrong PERMATOKEN_GRAPH_URL, not a network hiccup to retry."""
    info, ambiguous = transport_failure(httpx.UnsupportedProtocol("ftp://graph"))
    assert info.kind is ErrorKind.BAD_REQUEST and not ambiguous
    assert info.advice == "Check the Graph URL"


def test_only_failures_before_sending_are_unambiguous() -> None:
    for exc in (httpx.ConnectError("x"), httpx.PoolTimeout("x"), httpx.WriteTimeout("x")):
        _, ambiguous = transport_failure(exc)
        assert ambiguous is not isinstance(exc, NOT_SENT)
    assert transport_failure(httpx.WriteTimeout("x"))[1] is True


def test_scrub_masks_every_secret_in_message_and_details_and_nothing_else() -> None:
    info = GraphErrorInfo(
        kind=ErrorKind.TOKEN_DEAD,
        code=190,
        subcode=None,
        message="bad token AAA and secret BBB",
        http_status=400,
        details="echo AAA",
        advice="Generate a new token",
    )
    clean = scrub(info, ["AAA", "BBB"])
    assert clean.message == "bad token ********** and secret **********"
    assert clean.details == "echo **********"
    assert clean.advice == info.advice and clean.code == 190
    assert scrub(info, []) == info
