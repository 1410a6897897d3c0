"""Secrets as a type, and the log filter that keeps them out of log lines."""

from __future__ import annotations

import copy
import io
import logging
import pickle

import pytest

from permatoken._secret import (
    RedactingFilter,
    Secret,
    fingerprint,
    install_log_redaction,
    redact,
    register_secret,
)

VALUE = "zqSecretValue0123456789abcdef"


def test_repr_and_str_are_masked() -> None:
    """Neither repr, str, format nor a container's repr shows the value."""
    s = Secret(VALUE)
    for shown in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s}), "%s" % (s,)):  # noqa: UP031
        assert VALUE not in shown
        assert "*" in shown
    assert s.reveal() == VALUE


def test_pickling_is_refused() -> None:
    """A Secret cannot be pickled (crash dumps, caches, multiprocessing queues)."""
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(Secret(VALUE))
    with pytest.raises(TypeError):
        copy.copy(Secret(VALUE))


def test_equality_by_value_and_unhashable() -> None:
    """Equal values compare equal; a Secret is never a dict key by accident."""
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert Secret(VALUE) != VALUE
    with pytest.raises(TypeError):
        hash(Secret(VALUE))


def test_wrapping_a_secret_and_non_strings() -> None:
    assert Secret(Secret(VALUE)).reveal() == VALUE
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_fingerprint_is_short_stable_and_not_the_value() -> None:
    s = Secret(VALUE)
    assert s.fingerprint == fingerprint(VALUE)
    assert s.fingerprint.startswith("sha256:") and len(s.fingerprint) == len("sha256:") + 12
    assert VALUE not in s.masked() and VALUE[4:] not in s.masked()
    assert fingerprint(VALUE) != fingerprint(VALUE + "x")


def _logger_output(emit: object) -> str:
    """Log through a handler carrying the RedactingFilter; return what it wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"permatoken.test.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        emit(logger)  # type: ignore[operator]
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_filter_redacts_registered_secrets_in_message_and_args() -> None:
    """A registered value is masked wherever it appears, including %-format arguments."""
    register_secret(Secret(VALUE))
    out = _logger_output(
        lambda log: (log.info("got %s from upstream", VALUE), log.warning(f"inline {VALUE}!"))
    )
    assert VALUE not in out
    assert "got ********** from upstream" in out
    assert "inline **********!" in out


def test_filter_redacts_authorization_headers() -> None:
    """Authorization: Bearer … (any case, quoted or not) loses its credential."""
    token = "zqHeaderOnly0123456789"
    out = _logger_output(
        lambda log: (
            log.info("Authorization: Bearer %s", token),
            log.info("headers={'authorization': 'Bearer %s'}", token),
            log.info("AUTHORIZATION=Basic %s", token),
        )
    )
    assert token not in out
    assert out.count("**********") == 3


def test_filter_redacts_token_query_parameters() -> None:
    """access_token= (and other secret parameters) in URLs are masked; other params stay."""
    token = "zqQueryOnly0123456789"
    url = f"https://graph.facebook.com/v25.0/me?fields=id&access_token={token}&limit=5"
    out = _logger_output(lambda log: log.info("GET %s", url))
    assert token not in out
    assert "access_token=**********&limit=5" in out
    assert "fields=id" in out
    assert token not in redact(f"input_token={token} client_secret={token}")


def test_short_values_are_not_registered() -> None:
    """Registering very short values would mask unrelated text everywhere."""
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_install_log_redaction_on_root_handlers() -> None:
    """install_log_redaction() attaches the filter once to every handler of a logger."""
    stream = io.StringIO()
    logger = logging.getLogger("permatoken.test.install")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        install_log_redaction(logger)
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        register_secret(VALUE)
        logger.error("leak? %s", VALUE)
    finally:
        logger.removeHandler(handler)
    assert VALUE not in stream.getvalue()
