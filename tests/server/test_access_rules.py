"""Access rules at their edges: key lifetimes, grants, roles, durations (pure, no broker).

``test_access.py`` states the rules; these pin their boundaries and their exact refusals, and
are what `make mutate` measures access.py against (docs/development.md).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from permatoken._exceptions import InputError
from permatoken.server.access import (
    ALLOWED,
    Action,
    ApiKey,
    Principal,
    Role,
    covers,
    grant_matches,
    grant_within,
    hash_key,
    looks_like_key,
    new_key,
    new_key_id,
    parse_duration,
    same_hash,
    validate_grant,
)

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def _key(**changes: object) -> ApiKey:
    fields: dict[str, object] = {
        "id": "k0123456789ab",
        "role": Role.APP,
        "grants": ("acme/*",),
        "key_hash": "ab" * 32,
        "prefix": "pt_AbCd",
        "label": "billing",
        "created_at": NOW,
        "created_by": "key:kadmin",
    }
    return ApiKey(**(fields | changes))  # type: ignore[arg-type]


def test_a_key_is_usable_until_it_expires_or_is_revoked() -> None:
    assert _key().usable_at(NOW)
    assert _key(expires_at=NOW + timedelta(seconds=1)).usable_at(NOW)
    assert not _key(expires_at=NOW).usable_at(NOW)  # the expiry instant is already too late
    assert not _key(expires_at=NOW - timedelta(seconds=1)).usable_at(NOW)
    assert not _key(revoked_at=NOW).usable_at(NOW - timedelta(days=1))


def test_key_metadata_as_json_never_holds_the_key_or_its_hash() -> None:
    assert _key(expires_at=NOW + timedelta(days=90), revoked_at=NOW).to_json() == {
        "id": "k0123456789ab",
        "label": "billing",
        "role": "app",
        "grants": ["acme/*"],
        "prefix": "pt_AbCd",
        "created_at": "2027-01-04T09:00:00Z",
        "created_by": "key:kadmin",
        "expires_at": "2027-04-04T09:00:00Z",
        "revoked_at": "2027-01-04T09:00:00Z",
    }
    plain = _key().to_json()
    assert plain["expires_at"] is None and plain["revoked_at"] is None


def test_key_values_ids_and_hashes() -> None:
    value = new_key().reveal()
    assert re.fullmatch(r"pt_[A-Za-z0-9_-]{43}", value) and looks_like_key(value)
    assert not looks_like_key(value + "x") and not looks_like_key(value[:-1])
    assert not looks_like_key("pk_" + value[3:])
    ids = {new_key_id() for _ in range(50)}
    assert len(ids) == 50 and all(re.fullmatch(r"k[0-9a-f]{12}", i) for i in ids)
    assert hash_key(value) == hashlib.sha256(value.encode()).hexdigest()
    digest = hash_key(value)
    assert same_hash(digest, hash_key(value)) and not same_hash(digest, hash_key(value + "x"))


def test_principals_act_as_their_key() -> None:
    p = Principal("k0123", Role.READER, ("acme/**",))
    assert p.actor == "key:k0123"
    assert p.sees("acme/eu/x") and not p.sees("acmecorp/x") and not p.sees("acme")
    assert p.may(Action.VIEW) and p.may(Action.VIEW, "acme/wa")
    assert not p.may(Action.VIEW, "other/wa") and not p.may(Action.MANAGE, "acme/wa")
    assert Principal("k", Role.ADMIN, ()).sees("any/thing")
    assert not Principal("k", Role.APP, ()).sees("any/thing")


def test_what_each_role_may_do() -> None:
    assert ALLOWED == {
        Role.ADMIN: frozenset(Action),
        Role.OPERATOR: {Action.REPORT, Action.VIEW, Action.MANAGE, Action.METRICS},
        Role.READER: {Action.VIEW, Action.METRICS},
        Role.APP: {Action.READ_TOKEN, Action.REPORT},
    }
    assert {r.value for r in Role} == {"admin", "operator", "reader", "app"}


def test_covers_without_grants_means_everything_except_for_app_keys() -> None:
    for role in (Role.ADMIN, Role.OPERATOR, Role.READER):
        assert covers(role, (), "acme/wa")
    assert not covers(Role.APP, (), "acme/wa")
    assert covers(Role.APP, ("other/*", "acme/*"), "acme/wa")
    assert not covers(Role.ADMIN, ("other/*",), "acme/wa")


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        ("acme/**", "acme/x", True),
        ("acme/**", "acme/x/y/z", True),
        ("acme/**", "acme", False),
        ("**", "acme", True),
        ("**", "acme/x", True),
        ("acme/eu/**", "acme/eu", False),
        ("acme/eu/**", "acme/eu/x", True),
        ("acme/eu/**", "acme/us/x", False),
        ("acme/w?", "acme/wa", True),
        ("acme/w?", "acme/wax", False),
        ("acme/[ab]*", "acme/beta", True),
        ("acme/[ab]*", "acme/gamma", False),
        ("acme/*", "acme/", True),  # an empty last segment is still one segment
        ("acme/x", "acme/x/y", False),
        ("acme/x/y", "acme/x", False),
        ("*/*", "acme/x", True),
        ("acme/*/x", "acme/eu/x", True),
        ("acme/*/x", "acme/eu/y", False),
    ],
)
def test_grant_matching_at_the_edges(pattern: str, name: str, ok: bool) -> None:
    assert grant_matches(pattern, name) is ok


@pytest.mark.parametrize(
    "good", ["acme/*", "acme/**", "**", "a", "acme/w?", "acme/[ab]*", "a.b_c-d/x", "a/" * 99 + "b"]
)
def test_valid_grants_are_returned_unchanged(good: str) -> None:
    assert validate_grant(good) == good


def test_grant_length_and_segment_limits() -> None:
    assert validate_grant("a" * 63) == "a" * 63
    assert validate_grant("/".join(["a" * 63] * 3) + "/" + "b" * 8) == (
        "/".join(["a" * 63] * 3) + "/" + "b" * 8
    )  # exactly 200 characters
    for bad in ["a" * 64, "/".join(["a" * 63] * 3) + "/" + "b" * 9]:
        with pytest.raises(InputError) as exc:
            validate_grant(bad)
        assert exc.value.message == (
            f"invalid grant {bad[:60]!r}: use name segments with * or ?, e.g. acme/* or acme/**"
        )


@pytest.mark.parametrize("bad", ["", "acme/", "/acme", "Acme/*", "acme/x y", "acme/é"])
def test_malformed_grants_are_refused_with_the_pattern_and_an_example(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        validate_grant(bad)
    assert exc.value.to_dict() == {
        "code": "invalid_input",
        "message": (
            f"invalid grant {bad[:60]!r}: use name segments with * or ?, e.g. acme/* or acme/**"
        ),
    }


@pytest.mark.parametrize("bad", ["**/x", "acme/**/x", "a/**/**", "ab/" * 25 + "**/x"])
def test_a_double_star_is_only_allowed_last(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        validate_grant(bad)
    assert exc.value.message == (
        f"invalid grant {bad[:60]!r}: ** is only allowed as the last segment"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("12h", 43200),
        ("90d", 7776000),
        ("2w", 1209600),
        (" 10m ", 600),
        ("0", 0),
        ("999999d", 999999 * 86400),
    ],
)
def test_durations_in_every_unit(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["soon", "10y", "1234567d", "d", "1.5h", "-5m", "5 m", "a very long duration text"]
)
def test_bad_durations_say_what_is_expected(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_duration(bad)
    assert exc.value.message == (
        f"invalid duration {bad.strip()[:20]!r}: use e.g. 90d, 12h, 30m or 2w"
    )


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        ("acme/eu/x", "acme/eu/**", True),
        ("acme/us/x", "acme/eu/**", False),
        ("acme/eu/**", "acme/eu/**", True),
        ("acme/eu", "acme/eu/**", False),
        ("**", "*/**", False),  # "acme" is under ** but not under */**
        ("x/**", "*/**", True),
        ("x", "*", True),
        ("x", "y", False),
        ("x/y", "x", False),
        ("x/**", "x/y", False),
        ("ab", "a?", True),
        ("a?", "a?", True),
        ("a?", "ab", False),
        ("a[b]", "a*", False),  # a glob inside another glob: no, conservatively
        ("XY", "X?", True),  # a literal segment is checked against the glob itself
    ],
)
def test_grant_within_at_the_edges(inner: str, outer: str, within: bool) -> None:
    """Whether a key may hand out ``inner``: everything it matches, ``outer`` must match too."""
    assert grant_within(inner, outer) is within
