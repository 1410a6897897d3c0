"""Privileged issuer options: one declaration per issuer, provenance stamped by pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from permatoken import references as refs
from permatoken.issuers import ISSUER_CLASSES
from permatoken.models import ISSUERS, Credential, Health
from permatoken.server.access import Principal, Role, grant_within

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_every_issuer_declares_its_privileged_options() -> None:
    """The declaration covers exactly the issuers that exist (a new issuer must declare)."""
    assert set(refs.ISSUER_OPTIONS) == set(ISSUER_CLASSES) == set(ISSUERS)
    assert refs.CREDENTIAL_OPTIONS == {"admin_credential"}
    assert refs.UPSTREAM_OPTIONS == {"token_url", "login_url"}


def test_stamp_records_who_changed_what_and_keeps_the_rest() -> None:
    before = {"system_user_id": "1", "admin_credential": "acme/admin"}
    first = refs.stamp({}, before, "key:kadmin", AT)
    assert first[refs.PROVENANCE] == {"admin_credential": {"by": "key:kadmin", "at": AT_TEXT}}
    # An operator changes an unrelated option: the reference stays the admin's.
    second = refs.stamp(first, {**before, "scopes": "x"}, "key:kop", AT)
    assert refs.configured_by(second, "admin_credential") == "key:kadmin"
    # Changing the reference makes it the operator's; removing it removes its provenance.
    third = refs.stamp(second, {**before, "admin_credential": "acme/other"}, "key:kop", AT)
    assert refs.configured_by(third, "admin_credential") == "key:kop"
    assert refs.PROVENANCE not in refs.stamp(third, {"system_user_id": "1"}, "key:kop", AT)


def test_stamp_remembers_the_previous_upstream_host() -> None:
    a = refs.stamp({}, {"token_url": "https://auth.example.com/token"}, "cli", AT)
    assert "previous_host" not in a[refs.PROVENANCE]["token_url"]
    b = refs.stamp(a, {"token_url": "https://evil.example:8443/t"}, "key:k1", AT)
    assert b[refs.PROVENANCE]["token_url"] == {
        "by": "key:k1",
        "at": AT_TEXT,
        "previous_host": "auth.example.com",
    }
    c = refs.stamp(b, {"token_url": "https://evil.example:8443/other-path"}, "key:k1", AT)
    assert c[refs.PROVENANCE]["token_url"]["previous_host"] == "auth.example.com"


def test_reserved_options_given_as_input_are_dropped_by_stamp() -> None:
    forged = {"admin_credential": "globex/admin", refs.PROVENANCE: {"admin_credential": "cli"}}
    out = refs.stamp({}, forged, "key:kop", AT)
    assert refs.configured_by(out, "admin_credential") == "key:kop"


def test_upstream_status_names_the_host_and_the_change() -> None:
    opts = refs.stamp(
        {"token_url": "https://a.example/t"}, {"token_url": "https://b.example/t"}, "key:k", AT
    )
    cred = Credential(
        1, "acme/x", "acme", "oauth2-refresh", None, None, (), None, None, Health.OK, None, opts
    )
    assert refs.upstream_status(cred) == {
        "option": "token_url",
        "host": "b.example",
        "previous_host": "a.example",
        "changed_at": AT_TEXT,
        "changed_by": "key:k",
    }
    meta = Credential(
        2, "acme/y", "acme", "meta-system-mint", None, None, (), None, None, Health.OK, None
    )
    assert refs.upstream_status(meta) is None


AT_TEXT = "2025-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        ("acme/*", "acme/*", True),
        ("acme/wa", "acme/*", True),
        ("acme/x/y", "acme/*", False),
        ("acme/**", "acme/*", False),
        ("acme/**", "acme/**", True),
        ("acme/eu/*", "acme/**", True),
        ("acme", "acme/**", False),
        ("**", "acme/**", False),
        ("*/wa", "acme/*", False),
        ("acmecorp/*", "acme*/*", True),
        ("acme/w?", "acme/*", True),
        ("anything/at/all", "**", True),
    ],
)
def test_grant_within(inner: str, outer: str, within: bool) -> None:
    assert grant_within(inner, outer) is within


def test_a_grant_limited_key_contains_no_unlimited_key() -> None:
    limited = Principal("k1", Role.ADMIN, ("acme/*",))
    assert limited.contains(("acme/*",)) and not limited.contains(())
    assert not limited.contains(("acme/*", "globex/*"))
    assert Principal("k2", Role.ADMIN, ()).contains(())
