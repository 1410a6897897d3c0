"""The three Meta issuers against the sandbox, with their failure modes."""

from __future__ import annotations

from datetime import timedelta

from permatoken._secret import Secret
from permatoken.models import Health, VersionState
from rotation._live import DAY, DEBUG, EXCHANGE, MINT

NAME = "acme/messaging"


def health(world) -> Health:
    return world.get(NAME).health


# --- meta-system-refresh -----------------------------------------------------------------


def test_refresh_renews_a_60_day_token_and_keeps_the_old_one_valid(sandbox, add, engine, world):
    old = sandbox.token("system_user_60d")
    add(NAME, old)
    sandbox.advance(45 * DAY)
    out = engine.rotate(NAME)
    assert (out.status, out.version, out.previous_version) == ("rotated", 2, 1)
    assert abs(out.expires_at - (engine.clock.now() + timedelta(days=60))) < timedelta(hours=1)
    assert sandbox.successes(EXCHANGE) == 1
    assert sandbox.accepts(old) and sandbox.accepts(world.reveal(NAME))
    assert world.version(NAME, 1).state is VersionState.PREVIOUS


def test_refresh_of_an_expired_token_needs_a_human_and_never_calls_meta(
    sandbox, add, engine, world
):
    """An expired token can never be refreshed: needs_human, no exchange attempted."""
    add(NAME, sandbox.token("system_user_60d"))
    sandbox.advance(61 * DAY)
    out = engine.rotate(NAME)
    assert out.status == "needs_human"
    assert "expired" in out.message and "admin_credential" in world.get(NAME).health_reason
    assert health(world) is Health.NEEDS_HUMAN
    assert sandbox.calls(EXCHANGE) == []
    assert [v.state for v in world.versions(NAME)] == [VersionState.CURRENT]


def test_refresh_when_meta_says_190_463_needs_a_human(sandbox, add, engine, world):
    """Stored metadata says valid, Meta says expired (190/463): needs_human, no upstream success."""
    token = sandbox.token("system_user_60d")
    add(NAME, token)
    sandbox.state.expire_token(token)
    out = engine.rotate(NAME)
    assert out.status == "needs_human"
    assert health(world) is Health.NEEDS_HUMAN
    assert [c["error_code"] for c in sandbox.calls(EXCHANGE)] == [190]
    assert sandbox.successes(EXCHANGE) == 0
    assert world.version(NAME).version == 1


def test_refresh_with_a_wrong_app_secret_needs_a_human(sandbox, add, engine, world, cli, tmp_path):
    """`app update` with a wrong secret: Meta refuses the exchange (code 1), nothing is stored."""
    add(NAME, sandbox.token("system_user_60d"))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("0" * 32)
    assert cli("app", "update", sandbox.app["id"], "--secret-file", str(wrong)).rc == 0
    sandbox.advance(45 * DAY)
    out = engine.rotate(NAME)
    assert out.status == "needs_human", out
    assert "client secret" in out.message
    assert sandbox.successes(EXCHANGE) == 0
    assert [v.version for v in world.versions(NAME)] == [1]


def test_a_throttled_refresh_is_deferred_not_failed(sandbox, add, engine, world):
    """4 / 80007 mean slow down: deferred with retry_at, health not failing, next try works."""
    add(NAME, sandbox.token("system_user_60d"))
    sandbox.advance(45 * DAY)
    events: list[str] = []
    engine.events.subscribe(lambda event: events.append(event.kind))
    for code in (4, 80007):
        sandbox.fault(EXCHANGE, code=code, message="(#80007) Rate limit hit")
        out = engine.rotate(NAME)
        assert out.status == "deferred", out
        assert out.retry_at is not None and out.retry_at > engine.clock.now()
        cred = world.get(NAME)
        assert cred.health not in (Health.FAILING, Health.NEEDS_HUMAN, Health.INVALID)
        assert cred.next_due_at is not None and cred.next_action == "renew"
        assert world.version(NAME).version == 1
    assert sandbox.successes(EXCHANGE) == 0
    assert "rotation.failed" not in events and events.count("rotation.deferred") == 2
    out = engine.rotate(NAME)
    assert (out.status, out.version) == ("rotated", 2)
    assert sandbox.successes(EXCHANGE) == 1


# --- meta-system-mint --------------------------------------------------------------------


def mint_setup(sandbox, add, *, app: dict | None = None):
    """A never-expiring token of the developer's business plus an admin credential to mint with."""
    app = app or sandbox.app
    admin_user = sandbox.system_user(0)
    admin = sandbox.state.create_token("system_user", app_id=app["id"], system_user_id=admin_user)[
        "value"
    ]
    current = sandbox.state.create_token(
        "system_user", app_id=app["id"], system_user_id=admin_user
    )["value"]
    add("acme/admin", admin, issuer="manual", app_id=app["id"], app_secret=app["secret"])
    add(
        NAME,
        current,
        issuer="meta-system-mint",
        app_id=app["id"],
        app_secret=app["secret"],
        options={"system_user_id": admin_user, "admin_credential": "acme/admin"},
    )
    return current


def test_mint_rotates_a_never_expiring_token(sandbox, add, engine, world):
    old = mint_setup(sandbox, add)
    out = engine.rotate(NAME)
    assert (out.status, out.version, out.expires_at) == ("rotated", 2, None)
    assert sandbox.successes(MINT) == 1 and sandbox.calls(EXCHANGE) == []
    assert world.version(NAME).meta.token_type == "SYSTEM_USER"
    assert sandbox.accepts(old)


def test_mint_sends_appsecret_proof_for_a_require_app_secret_app(sandbox, add, engine, world):
    """The foreign app has 'Require App Secret' on: every call must carry a proof, and does."""
    foreign = sandbox.fx["apps"][1]
    assert foreign["require_app_secret"] is True
    mint_setup(sandbox, add, app=foreign)
    out = engine.rotate(NAME)
    assert out.status == "rotated", out
    assert sandbox.successes(MINT) == 1
    assert all(c["status"] == 200 for c in sandbox.calls()), sandbox.calls()


def test_mint_with_a_bad_proof_is_refused_and_needs_a_human(sandbox, add, engine, world):
    """A wrong app secret makes a wrong appsecret_proof: Meta refuses the mint; nothing stored."""
    mint_setup(sandbox, add)
    world.put_app(sandbox.app["id"], Secret("f" * 32))
    out = engine.rotate(NAME)
    assert out.status == "needs_human", out
    assert "appsecret_proof" in out.message
    assert sandbox.successes(MINT) == 0
    assert [c["error_code"] for c in sandbox.calls(MINT)] == [100]
    assert [v.version for v in world.versions(NAME)] == [1]


def test_refresh_falls_back_to_a_break_glass_mint_when_the_token_died(sandbox, add, engine, world):
    admin_user = sandbox.system_user(1)
    admin = sandbox.state.create_token("system_user_60d", system_user_id=admin_user)["value"]
    add("acme/admin", admin, issuer="manual")
    dead = sandbox.token("system_user_60d")
    add(NAME, dead, options={"system_user_id": admin_user, "admin_credential": "acme/admin"})
    sandbox.state.revoke_token(dead)
    out = engine.report_failure(NAME, 1, code=190, subcode=466)
    assert (out.status, out.version) == ("rotated", 2), out
    assert sandbox.successes(MINT) == 1 and sandbox.successes(EXCHANGE) == 0
    # the business must use expiring tokens: the break-glass mint asks for a 60-day one
    assert out.expires_at is not None
    assert world.version(NAME, 1).state in (VersionState.PREVIOUS, VersionState.RETIRED)


# --- meta-user-exchange ------------------------------------------------------------------


def test_user_exchange_turns_a_dashboard_token_into_a_long_lived_one(sandbox, add, engine, world):
    add(NAME, sandbox.token("dashboard"), issuer="meta-user-exchange")
    out = engine.rotate(NAME)
    assert out.status == "rotated", out
    assert out.expires_at - engine.clock.now() > timedelta(days=59)
    assert world.version(NAME).meta.token_type == "USER"
    assert sandbox.successes(EXCHANGE) == 1


def test_user_exchange_of_an_expired_token_needs_a_human(sandbox, add, engine, world):
    add(NAME, sandbox.token("dashboard"), issuer="meta-user-exchange")
    sandbox.advance(DAY)
    out = engine.rotate(NAME)
    assert out.status == "needs_human"
    assert "log in again" in world.get(NAME).health_reason
    assert sandbox.calls(EXCHANGE) == []


def test_every_verification_goes_through_debug_token(sandbox, add, engine):
    add(NAME, sandbox.token("system_user_60d"))
    sandbox.advance(45 * DAY)
    engine.rotate(NAME)
    assert len(sandbox.calls(DEBUG, status=200)) == 2  # once at add, once to verify version 2
