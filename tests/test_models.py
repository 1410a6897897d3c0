"""Names, token values, status records and health: pure rules, no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from permatoken._exceptions import InputError, InvalidNameError
from permatoken.health import assess, describe_left
from permatoken.models import (
    MAX_TOKEN_BYTES,
    NAME_GRAMMAR,
    Credential,
    CredentialStatus,
    Health,
    TokenVersion,
    VersionMeta,
    VersionState,
    tenant_of,
    validate_name,
    validate_token_value,
)
from permatoken.timeutil import isoformat, parse_datetime, parse_duration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "name",
    ["acme", "acme/messaging", "a/b/c/d", "x1.y_z-2", "0abc", "a" * 63, "/".join(["a" * 49] * 4)],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "acme/with space",
        "acme/../etc",
        "a..b",
        "/acme",
        "acme/",
        "acme//x",
        "Acme/upper",
        "a';drop table credentials;--",
        "a" * 300,
        "a" * 64,
        "a/b/c/d/e",
        "-acme",
        "acme/.hidden",
        "acme\nx",
        "acmé",
        "/".join(["a" * 63] * 4),  # 255 characters
    ],
)
def test_invalid_names_are_refused_with_the_grammar(name: str) -> None:
    """Every name outside the grammar is refused, and the message states the grammar."""
    with pytest.raises(InvalidNameError) as info:
        validate_name(name)
    assert NAME_GRAMMAR in info.value.message
    assert len(info.value.message) < len(NAME_GRAMMAR) + 100  # a 300-char name is shortened


def test_tenant_of() -> None:
    assert tenant_of("acme/messaging") == "acme"
    assert tenant_of("a/b/c") == "a"
    assert tenant_of("solo") == "default"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("\n", "empty"),
        ("   ", "only whitespace"),
        (" \t \n", "only whitespace"),
        ("x" * (MAX_TOKEN_BYTES + 1), "longer than 8192 bytes"),
        ("EAAé" + "x" * 20, "non-ASCII"),
        ("EAA\u200bxx", "non-ASCII"),
        ("EAA\x00xx", "control characters"),
        ("EAA\x1bxx", "control characters"),
        ("EAA xx", "whitespace"),
        ("EAA\txx", "whitespace"),
        ("two\nlines", "whitespace"),
        ("zqtok\n\n", "whitespace"),
    ],
)
def test_bad_token_values(raw: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        validate_token_value(raw)
    if raw.strip():
        assert raw.strip() not in info.value.message


@pytest.mark.parametrize("raw", ["EAAabc\n", "EAAabc\r\n", "EAAabc"])
def test_one_trailing_newline_is_removed(raw: str) -> None:
    assert validate_token_value(raw).reveal() == "EAAabc"


def test_exactly_8_kib_is_accepted() -> None:
    assert len(validate_token_value("x" * MAX_TOKEN_BYTES)) == MAX_TOKEN_BYTES


def _status(expires_at: datetime | None, *, health: Health = Health.OK) -> CredentialStatus:
    cred = Credential(
        id=1,
        name="acme/messaging",
        tenant="acme",
        issuer="manual",
        purpose=None,
        business_id=None,
        waba_ids=("1",),
        phone_number_id=None,
        app_id=None,
        health=health,
        health_reason=None,
        current_version=3,
    )
    version = TokenVersion(
        credential_id=1,
        version=3,
        state=VersionState.CURRENT,
        fingerprint="sha256:0123456789ab",
        kek_id="kek-x",
        meta=VersionMeta(token_type="SYSTEM_USER", expires_at=expires_at),
        created_at=NOW,
        state_changed_at=NOW,
    )
    return CredentialStatus(cred, version)


ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def test_status_json_has_the_fixed_fields() -> None:
    """name, health, expires_at (ISO 8601 UTC), version (int), issuer, token_type."""
    data = _status(datetime(2026, 7, 1, 10, 30, tzinfo=UTC)).to_json(NOW)
    assert data["name"] == "acme/messaging"
    assert data["health"] == "ok"
    assert data["expires_at"] == "2026-07-01T10:30:00Z"
    assert ISO_UTC.fullmatch(data["expires_at"])
    assert data["version"] == 3 and isinstance(data["version"], int)
    assert data["issuer"] == "manual"
    assert data["token_type"] == "SYSTEM_USER"
    assert _status(None).to_json(NOW)["expires_at"] is None


def test_isoformat_converts_to_utc() -> None:
    paris = datetime(2026, 7, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    assert isoformat(parse_datetime("2026-07-01T12:30:00+02:00")) == "2026-07-01T10:30:00Z"
    assert isoformat(paris) == "2026-07-01T10:30:00Z"
    assert isoformat(datetime(2026, 7, 1, 10, 30)) == "2026-07-01T10:30:00Z"  # naive = UTC
    assert isoformat(None) is None


def test_parse_datetime_errors_are_input_errors() -> None:
    assert parse_datetime("2027-01-31") == datetime(2027, 1, 31, tzinfo=UTC)
    with pytest.raises(InputError, match="next tuesday") as info:
        parse_datetime("next tuesday")
    assert "ISO 8601" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("10d", 864000), ("2w", 1209600)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0s", "10", "-5m", "1y", "", "101000d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (None, Health.OK),
        (timedelta(days=60), Health.OK),
        (timedelta(days=15), Health.OK),
        (timedelta(days=14), Health.EXPIRING),
        (timedelta(hours=1), Health.EXPIRING),
        (timedelta(seconds=0), Health.EXPIRED),
        (timedelta(days=-3), Health.EXPIRED),
    ],
)
def test_health_follows_expiry(expires_in: timedelta | None, expected: Health) -> None:
    meta = VersionMeta(expires_at=None if expires_in is None else NOW + expires_in)
    assert assess(Health.OK, meta, NOW) is expected


@pytest.mark.parametrize(
    "stored", [Health.INVALID, Health.NEEDS_HUMAN, Health.FAILING, Health.RENEWING]
)
def test_a_bad_stored_verdict_is_never_shown_greener(stored: Health) -> None:
    """A token whose last real call failed is not 'ok' just because it has time left."""
    meta = VersionMeta(expires_at=NOW + timedelta(days=50), is_valid=True)
    assert assess(stored, meta, NOW) is stored
    expired = VersionMeta(expires_at=NOW - timedelta(days=1))
    assert assess(stored, expired, NOW) is Health.EXPIRED


def test_health_without_a_current_version_or_when_invalid() -> None:
    assert assess(Health.OK, None, NOW) is Health.NEEDS_HUMAN
    assert assess(Health.OK, VersionMeta(is_valid=False), NOW) is Health.INVALID


def test_describe_left() -> None:
    assert describe_left(None, NOW) == "never"
    assert describe_left(NOW + timedelta(days=41), NOW) == "41 d"
    assert describe_left(NOW + timedelta(hours=21), NOW) == "21 h"
    assert describe_left(NOW - timedelta(days=3), NOW) == "expired 3 d ago"
