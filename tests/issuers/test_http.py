"""oauth2-refresh and login against the sandbox's stand-in providers."""

from __future__ import annotations

from permatoken.models import Health, VersionState
from rotation._live import spawn_cli

NAME = "acme/bsp"
TOKEN_ENDPOINT = "POST /oauth2/token"
LOGIN = "POST /v1/users/login"


def the_grant(sandbox):
    (grant,) = sandbox.state.providers.grants
    return grant


def add_oauth2(sandbox, add):
    o = sandbox.fx["providers"]["oauth2"]
    options = {"token_url": sandbox.url + o["token_url_path"], "client_id": o["client_id"]}
    secrets = {"refresh_token": o["refresh_token"], "client_secret": o["client_secret"]}
    return add(NAME, None, issuer="oauth2-refresh", meta=False, options=options, secrets=secrets)


def test_oauth2_rotates_the_refresh_token_with_every_renewal(sandbox, add, engine, world):
    first_rt = sandbox.fx["providers"]["oauth2"]["refresh_token"]
    add_oauth2(sandbox, add)
    rt1 = world.get_secret(NAME, "refresh_token").reveal()
    assert rt1 != first_rt
    out = engine.rotate(NAME)
    assert (out.status, out.version) == ("rotated", 2), out
    rt2 = world.get_secret(NAME, "refresh_token").reveal()
    assert rt2 not in (first_rt, rt1)
    out = engine.rotate(NAME, force=True)
    assert (out.status, out.version) == ("rotated", 3), out
    grant = the_grant(sandbox)
    assert not grant.revoked
    # every refresh token but the stored one was used exactly once (a reuse revokes the grant)
    assert sorted(grant.refresh_tokens.values()) == [False, True, True, True]
    assert grant.refresh_tokens[world.get_secret(NAME, "refresh_token").reveal()] is False
    assert sandbox.successes(TOKEN_ENDPOINT) == 3
    assert sandbox.state.providers.access_token_active(
        world.reveal(NAME).reveal(), sandbox.state.clock.now()
    )


def test_oauth2_crash_after_pending_never_replays_the_refresh_token(sandbox, add, engine, world):
    """The rotated refresh token is stored with the pending version: resuming calls no one."""
    add_oauth2(sandbox, add)
    crashed = spawn_cli(
        "rotate", NAME, env={"PERMATOKEN_CRASH_AT": "pending", "PERMATOKEN_LEASE_TTL": "1"}
    )
    assert crashed.wait(timeout=60) == -9
    assert (
        sandbox.successes(TOKEN_ENDPOINT) == 2
    )  # the first value at add, then the crashed rotation
    stored = world.get_secret(NAME, "refresh_token").reveal()
    assert the_grant(sandbox).refresh_tokens[stored] is False, (
        "the new refresh token was not persisted"
    )

    out = engine.rotate(NAME)
    assert (out.status, out.version) == ("rotated", 2), out
    assert len(sandbox.calls(TOKEN_ENDPOINT)) == 2, "resuming called the token endpoint again"
    out = engine.rotate(NAME, force=True)
    assert (out.status, out.version) == ("rotated", 3), out
    assert not the_grant(sandbox).revoked


def test_oauth2_refresh_token_used_elsewhere_needs_a_human(sandbox, add, engine, world):
    """Someone replayed our refresh token: the provider revokes the family; we stop and say so."""
    add_oauth2(sandbox, add)
    stolen = world.get_secret(NAME, "refresh_token").reveal()
    with sandbox.state.lock:
        sandbox.state.providers.refresh("sandbox-client", stolen, sandbox.state.clock.now(), 3600)
    out = engine.rotate(NAME)
    assert out.status == "needs_human", out
    assert world.get(NAME).health is Health.NEEDS_HUMAN
    assert world.version(NAME).version == 1
    assert the_grant(sandbox).revoked


def add_login(sandbox, add, password: str | None = None):
    lf = sandbox.fx["providers"]["login"]
    options = {"login_url": sandbox.url + lf["url_path"], "username": lf["username"]}
    return add(
        NAME,
        None,
        issuer="login",
        meta=False,
        options=options,
        secrets={"password": password or lf["password"]},
    )


def test_login_invalidates_the_previous_token(sandbox, add, engine, world):
    add_login(sandbox, add)
    old = world.reveal(NAME).reveal()
    providers, now = sandbox.state.providers, sandbox.state.clock.now
    assert providers.login_token_valid(old, now())
    out = engine.rotate(NAME)
    assert (out.status, out.version) == ("rotated", 2), out
    assert out.expires_at is not None
    assert not providers.login_token_valid(old, now())
    assert providers.login_token_valid(world.reveal(NAME).reveal(), now())
    # the issuer said the old value dies with the new login: it is not kept as a usable previous
    assert world.version(NAME, 1).state is VersionState.RETIRED
    assert sandbox.successes(LOGIN) == 2


def test_login_with_a_wrong_password_needs_a_human(sandbox, add, engine, world):
    add_login(sandbox, add)
    world.put_secret(NAME, "password", type(world.reveal(NAME))("not-the-password"))
    out = engine.rotate(NAME)
    assert out.status == "needs_human", out
    assert world.version(NAME).version == 1
    assert sandbox.successes(LOGIN) == 1
