"""`permatoken policy show/set`: per credential and per tenant, invalid values refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.timeutil import utcnow

DAY = 86400


@pytest.fixture
def added(store: Any) -> str:
    now = utcnow()
    meta = VersionMeta(token_type="SYSTEM_USER", issued_at=now, expires_at=now + timedelta(days=60))
    store.add_credential(
        NewCredential(name="acme/messaging", issuer="manual"), Secret("zqTOKENvalue123"), meta
    )
    return "acme/messaging"


def test_set_and_show_a_credential_policy(cli: Any, added: str) -> None:
    """Overrides are stored, shown with their source, and in status --json."""
    r = cli(
        "policy",
        "set",
        added,
        "--renew-at",
        "0.5",
        "--renew-before",
        "10d",
        "--grace",
        "2h",
        "--remind-before",
        "7d,1d",
    )
    assert r.rc == 0, r.output
    data = cli("policy", "show", added, "--json").json()
    assert data["effective"]["renew_at"] == 0.5
    assert data["effective"]["renew_before"] == "10d"
    assert data["effective"]["remind_before"] == ["7d", "1d"]
    assert data["layers"]["credential"]["grace"] == 7200
    status = cli("status", "--json").json()
    assert status[0]["policy"]["grace"] == "2h"
    assert "renew at 50%" in status[0]["policy"]["summary"]
    text = cli("policy", "show", added).stdout
    assert "credential" in text and "default" in text
    r = cli("policy", "set", added, "--unset", "renew_before")
    assert r.rc == 0
    assert cli("policy", "show", added, "--json").json()["effective"]["renew_before"] is None


def test_tenant_layer_applies_below_the_credential(cli: Any, added: str) -> None:
    assert cli("policy", "set", "--tenant", "acme", "--grace", "3h", "--renew-at", "0.6").rc == 0
    assert cli("policy", "set", added, "--renew-at", "0.7").rc == 0
    data = cli("policy", "show", added, "--json").json()
    assert data["effective"]["grace"] == "3h" and data["effective"]["renew_at"] == 0.7
    assert (
        cli("policy", "show", "--tenant", "acme", "--json").json()["effective"]["renew_at"] == 0.6
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--renew-at", "1.5"], "between 0 and 1"),
        (["--renew-at", "0"], "between 0 and 1"),
        (["--renew-before", "-3d"], "expected a number followed by"),
        (["--renew-before", "0d"], "greater than zero"),
        (["--grace", "soon"], "expected a number followed by"),
        (["--renew-before", "90d"], "past the token's lifetime"),
        (["--remind-before", "7d,x"], "expected a number followed by"),
        (["--backoff-base", "2h", "--backoff-cap", "1h"], "backoff_cap must be at least"),
    ],
)
def test_invalid_values_are_refused_with_the_accepted_forms(
    cli: Any, added: str, args: list[str], message: str
) -> None:
    before = cli("policy", "show", added, "--json").json()
    r = cli("policy", "set", added, *args)
    assert r.rc == 2 and message in r.stderr, r.output
    assert cli("policy", "show", added, "--json").json() == before


def test_minute_lifetimes_are_accepted(cli: Any, store: Any) -> None:
    """Demo tokens live minutes: policies in seconds and minutes are fine."""
    now = utcnow()
    meta = VersionMeta(
        token_type="SYSTEM_USER", issued_at=now, expires_at=now + timedelta(minutes=6)
    )
    store.add_credential(
        NewCredential(name="demo/short", issuer="manual"), Secret("zqSHORTvalue1"), meta
    )
    r = cli(
        "policy",
        "set",
        "demo/short",
        "--renew-before",
        "2m",
        "--grace",
        "30s",
        "--remind-before",
        "3m,1m",
    )
    assert r.rc == 0, r.output
    assert cli("policy", "set", "demo/short", "--renew-before", "10m").rc == 2
