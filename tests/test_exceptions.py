"""``_exceptions``: context is declared, typed and read back as plain attributes."""

from __future__ import annotations

import pytest

from permatoken._exceptions import (
    BackupTamperedError,
    ConflictError,
    GraphError,
    InputError,
    InvalidNameError,
    PermatokenError,
    RotationError,
    SinkError,
    UpstreamUnreachableError,
)
from permatoken.client.errors import (
    BrokerUnavailableError,
    CredentialNotFoundError,
    TokenDeadError,
    graph_exception,
)
from permatoken.meta.errors import ErrorKind, GraphErrorInfo, graph_error

INFO = GraphErrorInfo(
    kind=ErrorKind.TOKEN_DEAD, code=190, subcode=463, message="expired", http_status=401
)


def _all_subclasses(cls: type[PermatokenError]) -> list[type[PermatokenError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def test_rotation_error_fields_have_defaults_and_keep_the_message() -> None:
    exc = RotationError("acme/wa: token endpoint timed out")
    assert str(exc) == exc.message == "acme/wa: token endpoint timed out"
    assert (exc.name, exc.reason, exc.needs_human, exc.retry_after, exc.ambiguous) == (
        None,
        None,
        False,
        None,
        False,
    )
    assert exc.hint is None and exc.code == "rotation_failed"


def test_declared_fields_are_attributes_and_listed_in_to_dict() -> None:
    exc = RotationError("boom", name="acme/wa", reason="throttled", retry_after=30.0, hint="wait")
    assert exc.reason == "throttled" and exc.retry_after == 30.0
    assert exc.to_dict() == {
        "code": "rotation_failed",
        "message": "boom",
        "hint": "wait",
        "name": "acme/wa",
        "reason": "throttled",
        "needs_human": False,
        "retry_after": 30.0,
        "ambiguous": False,
    }


def test_an_undeclared_context_field_is_refused() -> None:
    """No more ``setattr(**context)``: a typo is a TypeError, not a silent new attribute."""
    with pytest.raises(TypeError):
        RotationError("boom", resaon="typo")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        PermatokenError("boom", name="acme/wa")  # type: ignore[call-arg]


def test_context_fields_come_from_the_signature_and_subclasses_inherit_them() -> None:
    assert InputError.context_fields == ("name", "app_id", "path", "value_kind")
    assert InvalidNameError.context_fields == InputError.context_fields
    assert SinkError.context_fields == ("url", "reason", "aws_code")
    assert "status" in CredentialNotFoundError.context_fields


def test_every_context_field_is_an_attribute_of_a_fresh_error() -> None:
    """Reading a declared field never needs getattr with a default."""
    for cls in [PermatokenError, *_all_subclasses(PermatokenError)]:
        if issubclass(cls, GraphError):
            exc: PermatokenError = cls("m", error=INFO)
        else:
            exc = cls("m")
        for name in cls.context_fields:
            assert name in vars(exc) or name in dir(cls), (cls.__name__, name)


def test_none_fields_are_left_out_of_the_context() -> None:
    exc = ConflictError("lost", name="acme/wa")
    assert exc.context == {"name": "acme/wa"}
    assert exc.constraint is None


def test_a_class_level_hint_survives_when_none_is_given() -> None:
    assert BrokerUnavailableError("down").hint == BrokerUnavailableError.hint
    assert BrokerUnavailableError("down", hint="other").hint == "other"
    assert BackupTamperedError("bad", mac="header").mac == "header"


def test_a_graph_error_reads_its_codes_from_the_classification() -> None:
    exc = graph_error(INFO, endpoint="me", ambiguous=True)
    assert (exc.kind, exc.graph_code, exc.graph_subcode, exc.http_status) == (
        "token_dead",
        190,
        463,
        401,
    )
    assert exc.to_dict() | {"message": "", "hint": ""} == {
        "code": "graph_error",
        "message": "",
        "hint": "",
        "kind": "token_dead",
        "graph_code": 190,
        "graph_subcode": 463,
        "http_status": 401,
        "endpoint": "me",
        "ambiguous": True,
    }
    copy = UpstreamUnreachableError("no answer", error=exc.error, endpoint=exc.endpoint)
    assert copy.kind == "token_dead" and copy.endpoint == "me"


def test_whatsapp_graph_errors_carry_the_phone_and_why_recovery_failed() -> None:
    exc = graph_exception(INFO, endpoint="123/messages", phone_number_id="123", recovery="no luck")
    assert isinstance(exc, TokenDeadError)
    assert (exc.phone_number_id, exc.recovery, exc.endpoint) == ("123", "no luck", "123/messages")
    assert "recovery failed: no luck" in exc.message
    assert exc.to_dict()["phone_number_id"] == "123"
