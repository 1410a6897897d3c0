"""Pure access rules: key format, grants, roles, durations, the failed-auth limiter."""

from __future__ import annotations

import pytest

from permatoken._exceptions import InputError
from permatoken.server.access import (
    Action,
    Principal,
    Role,
    grant_matches,
    hash_key,
    looks_like_key,
    new_key,
    parse_duration,
    validate_grant,
)
from permatoken.server.auth import FailureLimiter


def test_keys_are_pt_prefixed_256_bit_base64url() -> None:
    """A key is pt_ + 43 base64url characters, fresh each time; only its SHA-256 is kept."""
    a, b = new_key().reveal(), new_key().reveal()
    assert a != b and looks_like_key(a) and len(a) == 46 and a.startswith("pt_")
    assert len(hash_key(a)) == 64 and hash_key(a) != hash_key(b)
    assert "pt_" not in repr(new_key())


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        ("acme/*", "acme/messaging", True),
        ("acme/*", "acmecorp/x", False),
        ("acme/*", "acme", False),
        ("acme/*", "acme/eu/messaging", False),
        ("acme/**", "acme/eu/messaging", True),
        ("acme/**", "acme", False),
        ("acme/**", "acmecorp/eu/x", False),
        ("acme/mess*", "acme/messaging", True),
        ("*/messaging", "other/messaging", True),
        ("solo", "solo", True),
        ("solo", "solo2", False),
    ],
)
def test_grants_match_whole_segments(pattern: str, name: str, ok: bool) -> None:
    """Grant patterns match segment by segment, so acme/* never reaches acmecorp/x."""
    assert grant_matches(pattern, name) is ok


@pytest.mark.parametrize("bad", ["", "ACME/*", "acme/**/x", "a b", "x" * 300, "acme//x"])
def test_malformed_grants_are_refused(bad: str) -> None:
    """A grant that is not a name pattern is refused with a clear message."""
    with pytest.raises(InputError):
        validate_grant(bad)


def test_roles() -> None:
    """Reader and operator never read tokens; app keys read only what their grants cover."""
    app = Principal("k1", Role.APP, ("acme/*",))
    assert app.may(Action.READ_TOKEN, "acme/x") and not app.may(Action.READ_TOKEN, "other/x")
    assert not app.may(Action.VIEW) and not app.may(Action.KEYS)
    assert not Principal("k", Role.APP, ()).may(Action.READ_TOKEN, "acme/x")
    for role in (Role.READER, Role.OPERATOR):
        assert not Principal("k", role, ()).may(Action.READ_TOKEN, "acme/x")
        assert not Principal("k", role, ()).may(Action.KEYS)
    assert Principal("k", Role.OPERATOR, ("acme/*",)).may(Action.MANAGE, "acme/x")
    assert not Principal("k", Role.OPERATOR, ("acme/*",)).may(Action.MANAGE, "other/x")
    assert Principal("k", Role.ADMIN, ()).may(Action.READ_TOKEN, "any/thing")


def test_durations() -> None:
    assert (
        parse_duration("90d") == 90 * 86400
        and parse_duration("12h") == 43200
        and parse_duration("300") == 300
    )
    with pytest.raises(InputError):
        parse_duration("soon")


def test_failed_auth_limiter_slows_one_address_only() -> None:
    """After the burst an address waits (Retry-After); other addresses are unaffected."""
    now = [0.0]
    lim = FailureLimiter(burst=3, refill=0.5, clock=lambda: now[0])
    for _ in range(3):
        assert lim.retry_after("1.2.3.4") is None
        lim.failed("1.2.3.4")
    wait = lim.retry_after("1.2.3.4")
    assert wait is not None and 1.9 < wait <= 2.0
    assert lim.retry_after("5.6.7.8") is None
    now[0] += 2.0
    assert lim.retry_after("1.2.3.4") is None
