"""``rotation.steps``: the pure part of a rotation (no database, no sandbox, no clock).

The engine persists what these functions decide, so a wrong answer here is a rotation that
skips verification, a dead token retried every minute, or a throttle counted as a failure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from permatoken._exceptions import RotationError
from permatoken.meta.errors import ErrorKind, GraphErrorInfo, graph_error
from permatoken.models import Health, VersionMeta
from permatoken.policy import Policy
from permatoken.rotation import (
    Outcome,
    RotationOutcome,
    RotationStep,
    decide_failure,
    next_step,
)

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(backoff_base=60.0, backoff_cap=3600.0)
FAR = VersionMeta(expires_at=NOW + timedelta(days=40), is_valid=True)


def _graph(kind: ErrorKind, *, retry_after: float | None = None, advice: str = ""):
    info = GraphErrorInfo(
        kind=kind,
        code=190 if kind is ErrorKind.TOKEN_DEAD else 4,
        subcode=None,
        message=f"a {kind.value} answer",
        http_status=400,
        retry_after=retry_after,
        advice=advice,
    )
    return graph_error(info)


def _waited(decision_retry: datetime) -> float:
    return (decision_retry - NOW).total_seconds()


# --- steps ---------------------------------------------------------------------------------


def test_a_rotation_walks_every_step_once_in_order_and_ends_idle() -> None:
    seen = []
    step = next_step(None)
    while step is not None:
        seen.append(step)
        step = next_step(step)
    assert seen == [
        RotationStep.OBTAINING,
        RotationStep.PENDING,
        RotationStep.VERIFIED,
        RotationStep.PROMOTED,
    ]


@pytest.mark.parametrize(
    ("step", "after"),
    [
        (RotationStep.OBTAINING, RotationStep.PENDING),
        (RotationStep.PENDING, RotationStep.VERIFIED),
        (RotationStep.VERIFIED, RotationStep.PROMOTED),
        (RotationStep.PROMOTED, None),
    ],
)
def test_verification_is_never_skipped(step: RotationStep, after: RotationStep | None) -> None:
    """pending is followed by verified, never by promoted: nothing unverified is promoted."""
    assert next_step(step) is after


def test_persisted_step_names_are_stable() -> None:
    """The names are stored on credential rows: renaming one strands unfinished rotations."""
    assert [s.value for s in RotationStep] == ["obtaining", "pending", "verified", "promoted"]


def test_only_successful_outcomes_are_ok() -> None:
    ok = {o for o in Outcome if o.ok}
    assert ok == {
        Outcome.ROTATED,
        Outcome.ALREADY_ROTATED,
        Outcome.NEWER_EXISTS,
        Outcome.STILL_VALID,
    }
    for status in Outcome:
        assert RotationOutcome("acme/wa", status).ok is status.ok
    assert RotationOutcome("acme/wa", "rotated").ok  # a plain string status still works


# --- decide_failure ------------------------------------------------------------------------


def test_a_dead_token_needs_a_human_and_is_retried_only_after_the_cap() -> None:
    d = decide_failure(
        _graph(ErrorKind.TOKEN_DEAD, advice="re-onboard"), POLICY, NOW, attempt=1, current=FAR
    )
    assert (d.status, d.health, d.needs_human) == (Outcome.NEEDS_HUMAN, Health.NEEDS_HUMAN, True)
    assert d.retry_at == NOW + timedelta(seconds=3600)
    assert d.kind == "token_dead" and d.event == "rotation.failed"
    assert d.health_reason == f"{d.message} — re-onboard"


@pytest.mark.parametrize(
    "kind", [ErrorKind.PERMISSION, ErrorKind.BAD_REQUEST, ErrorKind.WRONG_TOKEN_KIND]
)
def test_errors_no_retry_can_fix_need_a_human(kind: ErrorKind) -> None:
    d = decide_failure(_graph(kind), POLICY, NOW, attempt=1, current=FAR)
    assert d.status is Outcome.NEEDS_HUMAN


def test_a_throttle_is_a_deferral_that_waits_as_long_as_meta_asked() -> None:
    """Not a failure: health stays what the current token's expiry says; no failure event."""
    d = decide_failure(
        _graph(ErrorKind.THROTTLED, retry_after=900), POLICY, NOW, attempt=1, current=FAR
    )
    assert (d.status, d.health, d.needs_human) == (Outcome.DEFERRED, Health.OK, False)
    assert d.retry_at == NOW + timedelta(seconds=900)
    assert d.event == "rotation.deferred"


def test_a_throttle_keeps_an_expiring_token_expiring() -> None:
    soon = VersionMeta(expires_at=NOW + timedelta(days=2), is_valid=True)
    d = decide_failure(_graph(ErrorKind.THROTTLED), POLICY, NOW, attempt=1, current=soon)
    assert d.health is Health.EXPIRING


def test_an_issuer_throttle_is_deferred_like_a_graph_throttle() -> None:
    exc = RotationError("acme/wa: 429", name="acme/wa", reason="throttled", retry_after=1200.0)
    d = decide_failure(exc, POLICY, NOW, attempt=2, current=FAR)
    assert d.status is Outcome.DEFERRED and d.kind == "throttled"
    assert d.retry_at == NOW + timedelta(seconds=1200)


def test_a_transient_failure_backs_off_and_the_wait_grows_with_attempts() -> None:
    first = decide_failure(_graph(ErrorKind.TRANSIENT), POLICY, NOW, attempt=1, current=FAR)
    third = decide_failure(_graph(ErrorKind.TRANSIENT), POLICY, NOW, attempt=3, current=FAR)
    assert (first.status, first.health) == (Outcome.FAILED, Health.FAILING)
    assert 30 <= _waited(first.retry_at) <= 60
    assert 120 <= _waited(third.retry_at) <= 240
    assert first.event == "rotation.failed"


def test_a_short_retry_hint_never_shortens_the_back_off() -> None:
    d = decide_failure(_graph(ErrorKind.TRANSIENT, retry_after=2), POLICY, NOW, attempt=1)
    assert _waited(d.retry_at) >= 30


def test_an_issuer_error_without_reason_is_an_upstream_failure() -> None:
    d = decide_failure(RotationError("acme/wa: no"), POLICY, NOW, attempt=1)
    assert (d.kind, d.status, d.message, d.health_reason) == (
        "upstream",
        Outcome.FAILED,
        "acme/wa: no",
        "acme/wa: no",
    )


def test_an_issuer_error_that_needs_a_human_says_so_with_its_hint() -> None:
    exc = RotationError(
        "acme/wa: refused", needs_human=True, hint="fix the option", reason="config"
    )
    d = decide_failure(exc, POLICY, NOW, attempt=1, current=FAR)
    assert (d.status, d.health, d.kind) == (Outcome.NEEDS_HUMAN, Health.NEEDS_HUMAN, "config")
    assert d.health_reason == "acme/wa: refused — fix the option"


def test_a_failure_after_expiry_shows_expired_unless_a_human_is_needed() -> None:
    gone = VersionMeta(expires_at=NOW - timedelta(seconds=1), is_valid=True)
    failed = decide_failure(_graph(ErrorKind.TRANSIENT), POLICY, NOW, attempt=1, current=gone)
    throttled = decide_failure(_graph(ErrorKind.THROTTLED), POLICY, NOW, attempt=1, current=gone)
    dead = decide_failure(_graph(ErrorKind.TOKEN_DEAD), POLICY, NOW, attempt=1, current=gone)
    assert failed.health is Health.EXPIRED and throttled.health is Health.EXPIRED
    assert dead.health is Health.NEEDS_HUMAN
