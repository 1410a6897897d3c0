"""``notify.notices``: what each notice says and the key that makes it happen once (pure, no I/O).

The scheduler and delivery tests prove that notices are sent; these prove the wording and the
deduplication keys, which decide whether a human hears about a token once, twice or never.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from permatoken.notify import notices as n
from permatoken.notify.notices import NoticeEvent

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
DAY = 86400.0


def test_a_reminder_key_is_the_key_of_the_reminder_it_names() -> None:
    """reminder_key() lets the scheduler ask "already sent?" before building the notice."""
    notice = n.reminder(
        "acme/bot", "acme", 4, expires_at=LATER, threshold=7 * DAY, now=NOW, automatic=True
    )
    assert notice.key == n.reminder_key("acme/bot", 4, 7 * DAY) == ("acme/bot", 4, "reminder", "7d")
    assert notice.title == "[permatoken] acme/bot expires in 7d or less"


def test_each_threshold_and_each_version_is_a_different_reminder() -> None:
    """14d and 7d for version 4 are two notices; 7d for version 5 is a third."""
    keys = {
        n.reminder_key("acme/bot", 4, 14 * DAY),
        n.reminder_key("acme/bot", 4, 7 * DAY),
        n.reminder_key("acme/bot", 5, 7 * DAY),
    }
    assert len(keys) == 3


def test_an_automatic_reminder_says_renewal_has_not_worked_yet_and_why() -> None:
    """The reason of the last failure is quoted; the fix is `permatoken rotate`, no manual steps."""
    body = n.reminder(
        "acme/bot",
        "acme",
        4,
        expires_at=LATER,
        threshold=3 * DAY,
        now=NOW,
        automatic=True,
        reason="app secret rejected",
    ).body
    assert body.startswith(
        "Credential acme/bot version 4 expires at 2027-03-04T12:00:00Z (in 3d); "
        "permatoken has not managed to renew it yet: app secret rejected."
    )
    assert "`permatoken status acme/bot`" in body
    assert "System users" not in body


def test_a_manual_reminder_gives_the_system_user_steps_with_the_name_filled_in() -> None:
    body = n.reminder(
        "acme/hand", "acme", 1, expires_at=LATER, threshold=DAY, now=NOW, automatic=False
    ).body
    assert "renewed by hand (manual issuer)" in body
    assert "permatoken rotate acme/hand --token-file FILE   (or pipe it on stdin)" in body
    assert "{name}" not in body


@pytest.mark.parametrize(
    ("expires_at", "said"),
    [
        (None, "never expires"),
        (NOW - timedelta(minutes=1), "expired at 2027-03-01T11:59:00Z"),
        (NOW, "expired at 2027-03-01T12:00:00Z"),
        (NOW + timedelta(hours=36), "expires at 2027-03-03T00:00:00Z (in 1.5d)"),
    ],
)
def test_the_expiry_is_said_in_words_relative_to_now(
    expires_at: datetime | None, said: str
) -> None:
    """No expiry, already expired (at the instant itself too), or a date and what is left."""
    body = n.recovered("acme/bot", "acme", 2, expires_at=expires_at, now=NOW).body
    assert body == f"acme/bot is healthy again at version 2 ({said})."


def test_expired_says_a_new_token_must_be_created_and_is_sent_once_per_version() -> None:
    notice = n.expired("acme/bot", "acme", 3, expires_at=NOW, now=NOW, automatic=True)
    assert notice.key == n.expired_key("acme/bot", 3) == ("acme/bot", 3, "expired", "")
    assert "did not manage to renew it in time" in notice.body
    assert "can never be renewed" in notice.body
    manual = n.expired("acme/bot", "acme", 3, expires_at=NOW, now=NOW, automatic=False)
    assert "no new value was given" in manual.body


def test_a_renewal_failure_is_one_notice_per_kind_and_says_when_it_is_retried() -> None:
    """The kind is the threshold: a throttle and a permission error are two notices."""
    retry = NOW + timedelta(minutes=5)
    notice = n.renewal_failed(
        "acme/bot",
        "acme",
        3,
        reason="code 10",
        kind="permission",
        expires_at=LATER,
        retry_at=retry,
        now=NOW,
    )
    assert notice.key == ("acme/bot", 3, "renewal_failed", "permission")
    assert (
        "failed (permission): code 10. permatoken retries at 2027-03-01T12:05:00Z." in notice.body
    )
    assert "The current token is kept and still used." in notice.body
    bare = n.renewal_failed(
        "acme/bot", "acme", 3, reason="x", kind=None, expires_at=None, retry_at=None, now=NOW
    )
    assert bare.threshold == "" and "retries at" not in bare.body and "failed: x." in bare.body


def test_renewed_names_the_previous_version_only_when_there_was_one() -> None:
    first = n.renewed("acme/bot", "acme", 1, previous=None, expires_at=None, now=NOW)
    later = n.renewed("acme/bot", "acme", 2, previous=1, expires_at=None, now=NOW)
    assert first.body == "acme/bot was renewed to version 1 (never expires)."
    assert later.body == "acme/bot was renewed from version 1 to version 2 (never expires)."


def test_needs_human_and_token_invalid_carry_the_steps_and_the_reason() -> None:
    human = n.needs_human("acme/bot", "acme", 2, reason="revoked", expires_at=None, now=NOW)
    invalid = n.token_invalid("acme/bot", "acme", 2, verdict=None, now=NOW)
    assert "needs a person: revoked." in human.body
    assert "Meta says the token is not valid (checked 2027-03-01T12:00:00Z)" in invalid.body
    for notice in (human, invalid):
        assert "Assign assets" in notice.body and "{name}" not in notice.body


def test_a_backup_failure_is_one_notice_per_period_under_a_reserved_name() -> None:
    notice = n.backup_failed(7, reason="disk full", directory="/var/backups", now=NOW)
    assert (notice.credential, notice.tenant, notice.version) == (
        n.BACKUP_NOTICE_NAME,
        "permatoken",
        7,
    )
    assert notice.key == ("permatoken/backup", 7, "backup_failed", "")


def test_an_account_update_is_one_notice_per_event_and_instant_within_forty_characters() -> None:
    event = "PARTNER_REMOVED_" + "X" * 40
    notice = n.account_update(
        "acme/bot", "acme", 2, event=event, at=NOW, what="w", todo="t", confirmed="c"
    )
    assert len(notice.threshold) == 40 and notice.threshold.startswith("PARTNER_REMOVED_")
    short = n.account_update(
        "acme/bot", "acme", 2, event="ACCOUNT_DELETED", at=NOW, what="w", todo="t", confirmed="c"
    )
    assert short.threshold == f"ACCOUNT_DELETED@{int(NOW.timestamp())}"
    assert short.title == "[permatoken] acme/bot: account deleted"


def test_a_sink_behind_is_one_notice_per_sink_and_version() -> None:
    notice = n.sink_behind(
        "acme/bot", "acme", 5, url="aws-sm://x", uid="s1", error=None, behind=2 * 3600
    )
    assert notice.key == ("acme/bot", 5, "sink_behind", "sink:s1")
    assert "became current 2h ago" in notice.body
    assert "no delivery has been attempted yet" in notice.body
    failing = n.sink_behind("acme/bot", "acme", 5, url="u", uid="s1", error="403", behind=60)
    assert "the last attempt failed: 403" in failing.body


def test_renewed_is_opt_in_and_recovery_follows_only_trouble() -> None:
    """Good news is not sent by default; a 'recovered' follows failures, not reminders."""
    assert NoticeEvent.RENEWED.value not in n.DEFAULT_EVENTS
    assert n.DEFAULT_EVENTS == {e.value for e in NoticeEvent} - {"renewed"}
    assert NoticeEvent.REMINDER not in n.TROUBLE and NoticeEvent.RECOVERED not in n.TROUBLE
    assert NoticeEvent.EXPIRED in n.TROUBLE and NoticeEvent.TOKEN_INVALID in n.TROUBLE
