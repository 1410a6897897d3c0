"""``plan_next``: what a credential needs next and when (pure, no database, no sandbox).

The scheduler stores the answer as ``next_due_at``/``next_action`` and wakes up for nothing
else, so a wrong plan means a renewal, an inspection or a reminder that never happens.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from permatoken.models import Credential, Health, TokenVersion, VersionMeta, VersionState
from permatoken.policy import Policy, renewal_due_at
from permatoken.rotation import plan_next

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
QUIET = Policy(jitter=0.0)


def _cred(issuer: str) -> Credential:
    return Credential(
        id=1,
        name="acme/wa",
        tenant="acme",
        issuer=issuer,
        purpose=None,
        business_id=None,
        waba_ids=(),
        phone_number_id=None,
        app_id="123",
        health=Health.OK,
        health_reason=None,
    )


def _version(
    *,
    issued: datetime | None = None,
    expires: datetime | None = None,
    created: datetime = NOW - 10 * DAY,
    inspected: datetime | None = None,
) -> TokenVersion:
    meta = VersionMeta(issued_at=issued, expires_at=expires, inspected_at=inspected)
    return TokenVersion(1, 1, VersionState.CURRENT, "sha256:x", "kek-x", meta, created, created)


def test_an_expiring_automatic_token_is_renewed_at_two_thirds_of_its_life() -> None:
    """60-day token issued 10 days ago: renew on day 40, nothing else planned."""
    issued = NOW - 10 * DAY
    current = _version(issued=issued, expires=issued + 60 * DAY)
    assert plan_next(QUIET, current, _cred("meta-system-refresh"), NOW) == (
        issued + 40 * DAY,
        "renew",
    )


def test_the_renewal_uses_the_policy_and_the_credential_as_jitter_seed() -> None:
    issued = NOW - 10 * DAY
    current = _version(issued=issued, expires=issued + 60 * DAY)
    policy = Policy(jitter=0.2, renew_before=25 * 86400)
    due = renewal_due_at(
        policy,
        issued_at=issued,
        expires_at=issued + 60 * DAY,
        created_at=current.created_at,
        jitter_seed="acme/wa",
    )
    assert due is not None and due < issued + 35 * DAY
    assert plan_next(policy, current, _cred("oauth2-refresh"), NOW) == (due, "renew")


def test_a_never_expiring_token_is_inspected_daily_from_its_last_inspection() -> None:
    current = _version(expires=None, inspected=NOW - timedelta(hours=3))
    assert plan_next(QUIET, current, _cred("meta-system-refresh"), NOW) == (
        NOW + timedelta(hours=21),
        "inspect",
    )
    never_inspected = _version(expires=None, created=NOW - timedelta(hours=5))
    assert plan_next(QUIET, never_inspected, _cred("meta-system-refresh"), NOW) == (
        NOW + timedelta(hours=19),
        "inspect",
    )


def test_a_never_expiring_token_past_its_max_age_is_renewed_before_the_next_inspection() -> None:
    created = NOW - 89 * DAY
    current = _version(expires=None, created=created, inspected=NOW - timedelta(hours=1))
    policy = replace(QUIET, max_age=89.5 * 86400)
    assert plan_next(policy, current, _cred("meta-system-mint"), NOW) == (
        created + timedelta(days=89.5),
        "renew",
    )


def test_a_manual_token_gets_its_next_reminder_or_inspection_and_never_a_renewal() -> None:
    """Manual: no renewal; the earliest of the next inspection and the next reminder."""
    policy = replace(QUIET, inspect_every=30 * 86400)
    expires = NOW + 20 * DAY
    current = _version(issued=NOW - 40 * DAY, expires=expires, inspected=NOW)
    manual = _cred("manual")
    assert plan_next(policy, current, manual, NOW) == (expires - 14 * DAY, "remind")
    # Exactly at the 14-day point that reminder is no longer ahead: the 7-day one is next.
    assert plan_next(policy, current, manual, expires - 14 * DAY) == (expires - 7 * DAY, "remind")
    assert plan_next(policy, current, manual, expires - 2 * DAY) == (expires - 1 * DAY, "remind")
    # After the last reminder only the inspection is left.
    assert plan_next(policy, current, manual, expires - timedelta(hours=1)) == (
        NOW + 30 * DAY,
        "inspect",
    )
    daily = replace(QUIET, inspect_every=86400)
    assert plan_next(daily, current, manual, NOW) == (NOW + DAY, "inspect")


def test_a_previous_version_is_retired_after_the_grace_period_when_that_comes_first() -> None:
    issued = NOW - 10 * DAY
    current = _version(issued=issued, expires=issued + 60 * DAY)
    cred = _cred("meta-system-refresh")
    policy = replace(QUIET, grace=7200)
    assert plan_next(policy, current, cred, NOW, has_previous=True) == (
        NOW + timedelta(hours=2),
        "retire",
    )
    assert plan_next(policy, current, cred, NOW, has_previous=False) == (
        issued + 40 * DAY,
        "renew",
    )
