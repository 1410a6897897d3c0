"""One list of report statuses (models.ReportStatus): the broker, the SDK's two modes and the
OpenAPI document spell the same words, and every engine outcome maps to one of them."""

from __future__ import annotations

import typing

import pytest

from permatoken.client import broker as client_broker
from permatoken.client import embedded
from permatoken.client.models import ReportAnswer
from permatoken.models import ReportStatus
from permatoken.rotation import Outcome, RotationOutcome

WORDS = ["renewed", "newer_exists", "still_valid", "needs_human", "failed", "busy"]


def test_report_statuses_are_the_documented_six() -> None:
    """The enum is str-valued, so JSON answers and comparisons with plain words are unchanged."""
    assert [s.value for s in ReportStatus] == WORDS
    assert all(isinstance(s, str) and s == s.value for s in ReportStatus)
    assert [s for s in ReportStatus if s.recovered] == ["renewed", "newer_exists"]
    assert [s for s in ReportStatus if s.usable] == ["renewed", "newer_exists", "still_valid"]


def test_the_sdk_accepts_exactly_the_report_statuses() -> None:
    """The broker client refuses any other status and hands out enum members."""
    assert client_broker.REPORT_STATUSES == set(ReportStatus)
    answer = client_broker.parse_report({"status": "busy", "message": ""}, "acme/wa")
    assert answer.status is ReportStatus.BUSY


def test_a_report_answer_recovers_on_the_recovered_statuses() -> None:
    """ReportAnswer.recovered agrees with ReportStatus.recovered, for members and plain words."""
    for status in ReportStatus:
        assert ReportAnswer(status).recovered is status.recovered
        assert ReportAnswer(status.value).recovered is status.recovered  # type: ignore[arg-type]


def test_the_openapi_report_schema_names_the_report_statuses() -> None:
    """ReportOut.status is spelled as a Literal (a plain string enum in OpenAPI): the same words."""
    from permatoken.server.schemas import ReportOut

    annotation = ReportOut.model_fields["status"].annotation
    assert typing.get_args(annotation) == tuple(ReportStatus)


def test_every_engine_outcome_has_a_report_status_on_the_broker() -> None:
    """server.reports.REPORT_STATUS is total over Outcome; a throttled renewal answers busy."""
    from permatoken.server.reports import REPORT_STATUS, USABLE

    assert set(REPORT_STATUS) == set(Outcome)
    assert all(isinstance(s, ReportStatus) for s in REPORT_STATUS.values())
    assert REPORT_STATUS[Outcome.DEFERRED] is ReportStatus.BUSY
    assert USABLE == ("renewed", "newer_exists", "still_valid")


def test_every_engine_outcome_has_a_report_status_in_embedded_mode() -> None:
    """The embedded backend's map (keyed by the outcome's word) is total over Outcome too; there a
    throttled renewal answers failed."""
    assert set(embedded._STATUS) == {o.value for o in Outcome}
    assert all(isinstance(s, ReportStatus) for s in embedded._STATUS.values())
    assert embedded._STATUS[Outcome.DEFERRED] is ReportStatus.FAILED
    for outcome in Outcome:
        if outcome is not Outcome.DEFERRED:
            from permatoken.server.reports import REPORT_STATUS

            assert embedded._STATUS[outcome] is REPORT_STATUS[outcome], outcome


@pytest.mark.parametrize("status", list(ReportStatus))
def test_every_report_status_has_a_default_message(status: ReportStatus) -> None:
    """POST /v1/reports words a message for every status (the match is exhaustive)."""
    from permatoken.server.routes_tokens import _default_message

    message = _default_message(status, RotationOutcome("acme/wa", Outcome.ROTATED, 4))
    assert message


def test_a_rotation_outcome_status_is_an_outcome() -> None:
    """RotationOutcome.status is typed with the enum, so mypy checks comparisons with it."""
    assert typing.get_type_hints(RotationOutcome)["status"] is Outcome
