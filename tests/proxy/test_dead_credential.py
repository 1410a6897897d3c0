"""A credential whose stored health says its token is dead is never forwarded as it is."""

from __future__ import annotations

import pytest

from permatoken.models import Health

from .conftest import MINT, NAME, Proxied


def _mark(proxied: Proxied, health: Health) -> None:
    """Store ``health`` for the credential, as an inspection or a provider event would."""
    proxied.broker.store.update_credential(NAME, health=health)
    proxied.broker.broker.cache.invalidate(NAME)


@pytest.mark.parametrize("health", [Health.INVALID, Health.EXPIRED])
def test_a_dead_credential_without_a_next_version_is_refused_before_meta(
    proxied: Proxied, health: Health
):
    """Invalid (or expired) and no renewal possible: a Graph-shaped 190, reported once through
    the single-flight path, and Meta never sees the request (a streamed one included)."""
    proxied.revoke()
    _mark(proxied, health)
    proxied.state.inject_fault(MINT, code=200, http_status=403, count=None)
    c = proxied.client()
    r = proxied.send(c, "doomed")
    assert r.status_code == 401, r.text
    assert r.headers["x-permatoken-error"] == "token_dead"
    assert "invalid_token" in r.headers["www-authenticate"]
    error = r.json()["error"]
    assert (error["code"], error["type"]) == (190, "OAuthException")
    assert error["message"].startswith("permatoken: ") and "nothing was sent" in error["message"]
    assert f"permatoken status {NAME}" in error["message"]
    big = b"x" * (2 * 1024 * 1024)  # beyond replay_bytes: streamed, never replayable
    r = c.post(f"/v25.0/{proxied.phone_id}/media", content=big)
    assert r.headers["x-permatoken-error"] == "token_dead"
    assert proxied.sends() == []
    assert proxied.state.calls("POST /{phone-number-id}/media") == []
    assert proxied.mints() == 0
    lines = proxied.broker.client(proxied.broker.key("reader")).get("/metrics").text
    assert 'permatoken_proxy_requests_total{outcome="token_dead"} 2.0' in lines
    assert 'permatoken_proxy_recoveries_total{result="failed"} 2.0' in lines


def test_a_dead_credential_is_renewed_first_and_the_request_goes_with_the_next_version(
    proxied: Proxied,
):
    """The report renews it (one mint); the buffered send then reaches Meta once, with the new
    token: Meta never sees the dead one."""
    dead = proxied.revoke()
    _mark(proxied, Health.INVALID)
    r = proxied.send(proxied.client(), "after renewal")
    assert r.status_code == 200, r.text
    assert proxied.accepted() == ["after renewal"]
    assert proxied.sends() == [None]
    assert proxied.mints() == 1
    assert proxied.token() != dead


def test_a_refused_request_succeeds_once_a_fresh_version_exists(proxied: Proxied):
    """Refused while renewals fail; after the cause is fixed the same buffered request is sent
    with the next version and accepted, Meta having seen no request with the dead token."""
    proxied.revoke()
    _mark(proxied, Health.INVALID)
    proxied.state.inject_fault(MINT, code=200, http_status=403, count=None)
    c = proxied.client()
    assert proxied.send(c, "refused").headers["x-permatoken-error"] == "token_dead"
    proxied.state.clear_faults()
    r = proxied.send(c, "accepted")
    assert r.status_code == 200, r.text
    assert proxied.accepted() == ["accepted"]
    assert proxied.sends() == [None]


def test_a_stale_invalid_health_with_a_working_token_forwards_the_request(proxied: Proxied):
    """Meta says the token still works (debug_token): the request goes out with it, no mint."""
    token = proxied.token()
    _mark(proxied, Health.INVALID)
    r = proxied.send(proxied.client(), "still fine")
    assert r.status_code == 200, r.text
    assert proxied.sends() == [None] and proxied.mints() == 0
    assert proxied.token() == token
