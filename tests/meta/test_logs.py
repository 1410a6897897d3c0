"""meta/_logs.py: httpx's and httpcore's loggers redact what Meta's URLs and headers carry."""

from __future__ import annotations

import logging

import pytest

from permatoken._secret import RedactingFilter
from permatoken.meta import graph  # noqa: F401  (importing the Graph client guards the loggers)
from permatoken.meta._logs import HTTP_LOGGERS, guard_httpx_logs

TOKEN = "EAAG" + "x" * 40


def _filters(name: str) -> int:
    return sum(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters)


def test_importing_the_graph_client_guards_every_http_logger_once() -> None:
    """Each httpx/httpcore logger has exactly one RedactingFilter, however often it is guarded."""
    guard_httpx_logs()
    guard_httpx_logs()
    assert {name: _filters(name) for name in HTTP_LOGGERS} == dict.fromkeys(HTTP_LOGGERS, 1)


@pytest.mark.parametrize("name", ["httpx", "httpcore.http11"])
def test_a_request_line_with_a_token_in_the_query_is_logged_redacted(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx's INFO request line and httpcore's header dump never show a token or a secret."""
    url = f"https://graph.facebook.com/v25.0/debug_token?input_token={TOKEN}&client_secret=s3cr3t"
    with caplog.at_level(logging.DEBUG, logger=name):
        logging.getLogger(name).info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    assert "debug_token" in caplog.text
    assert TOKEN not in caplog.text and "s3cr3t" not in caplog.text
