"""Hostile or odd answers on every issuer endpoint: each is a clear failed attempt, nothing is
stored and the current version is untouched. The sandbox's ``respond`` faults play the server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from permatoken.meta.graph import GraphClient
from permatoken.models import Health, VersionState
from permatoken.rotation import RenewalEngine
from rotation._live import DAY, EXCHANGE, MINT

from .test_http import LOGIN, TOKEN_ENDPOINT, add_login, add_oauth2
from .test_meta import mint_setup

NAME_META = "acme/messaging"
NAME_HTTP = "acme/bsp"
#: A token-shaped value the server "issues" in the hostile answers; it must never leak.
FRESH = "EAAhostile" + "Q" * 60


@dataclass(frozen=True)
class Issuer:
    name: str
    endpoint: str
    setup: Callable[[Any, Any], None]
    #: The JSON answer carrying ``token`` (any JSON value) and ``extra`` fields.
    answer: Callable[[Any, dict[str, Any]], Any]


def meta_answer(token: Any, extra: dict[str, Any]) -> Any:
    return {"access_token": token, "token_type": "bearer", **extra}


def login_answer(token: Any, extra: dict[str, Any]) -> Any:
    user = {"token": token, "expires_after": "2030-01-01 00:00:00+00:00"}
    return {
        "users": [
            {**user, **{k.replace("expires_in", "expires_after"): v for k, v in extra.items()}}
        ]
    }


def setup_refresh(sandbox, add) -> None:
    add(NAME_META, sandbox.token("system_user_60d"))
    sandbox.advance(45 * DAY)


def setup_user(sandbox, add) -> None:
    add(NAME_META, sandbox.token("dashboard"), issuer="meta-user-exchange")


ISSUERS = [
    Issuer(NAME_META, EXCHANGE, setup_refresh, meta_answer),
    Issuer(NAME_META, MINT, lambda s, a: mint_setup(s, a) and None, meta_answer),
    Issuer(NAME_META, EXCHANGE, setup_user, meta_answer),
    Issuer(NAME_HTTP, TOKEN_ENDPOINT, lambda s, a: add_oauth2(s, a) and None, meta_answer),
    Issuer(NAME_HTTP, LOGIN, lambda s, a: add_login(s, a) and None, login_answer),
]
ISSUER_IDS = ["meta-system-refresh", "meta-system-mint", "meta-user-exchange", "oauth2", "login"]


def respond_json(value: Any, **spec: Any) -> dict[str, Any]:
    return {"json": value, **spec}


def raw(body: str, **spec: Any) -> dict[str, Any]:
    return {"body": body, **spec}


#: name → fault spec built from the issuer's answer shape (``ok(token, extra)``).
HOSTILE: dict[str, Callable[[Callable[..., Any]], dict[str, Any]]] = {
    "empty-200": lambda ok: raw(""),
    "empty-object": lambda ok: respond_json({}),
    "json-array": lambda ok: respond_json([ok(FRESH, {})]),
    "json-null": lambda ok: raw("null", content_type="application/json"),
    "200-with-error-object": lambda ok: respond_json(
        {"error": {"message": "An unexpected error has occurred.", "code": 2}}
    ),
    "2xx-html-page": lambda ok: raw(
        "<html><head><title>Welcome to the hotel wifi</title></head></html>",
        http_status=203,
        content_type="text/html",
    ),
    "token-json-sent-as-html": lambda ok: raw(json.dumps(ok(FRESH, {})), content_type="text/html"),
    "ten-megabytes": lambda ok: raw("x", repeat=10 * 1024 * 1024),
    "slow-drip": lambda ok: respond_json(ok(FRESH, {}), chunk_bytes=8, chunk_delay_seconds=0.3),
    "wrong-content-type": lambda ok: raw(json.dumps(ok(FRESH, {})), content_type="application/xml"),
    "token-as-number": lambda ok: respond_json(ok(123456789, {})),
    "token-as-null": lambda ok: respond_json(ok(None, {})),
    "token-as-object": lambda ok: respond_json(ok({"value": FRESH}, {})),
    "empty-token": lambda ok: respond_json(ok("", {})),
    "token-100-kb": lambda ok: respond_json(ok("EAA" + "A" * 100_000, {})),
    "token-with-whitespace": lambda ok: respond_json(ok("EAA abc\ndef", {})),
    "token-non-ascii": lambda ok: respond_json(ok("EAAé" + "Q" * 40, {})),
    "duplicate-keys": lambda ok: raw(
        json.dumps(ok(FRESH, {}))[:-1] + ', "access_token": "EAAother", "users": []}',
        content_type="application/json",
    ),
    "expiry-1e30": lambda ok: respond_json(ok(FRESH, {"expires_in": 10**30})),
    "expiry-negative": lambda ok: respond_json(ok(FRESH, {"expires_in": -5})),
    "expiry-boolean": lambda ok: respond_json(ok(FRESH, {"expires_in": True})),
    "expiry-word": lambda ok: respond_json(ok(FRESH, {"expires_in": "soon"})),
    "expiry-nan": lambda ok: raw(
        json.dumps(ok(FRESH, {"expires_in": float("nan")})), content_type="application/json"
    ),
}


def tight_engine(settings, world) -> RenewalEngine:
    """The engine as serve builds it, with a 1 s whole-answer deadline (for the slow drip)."""
    clock = world.clock
    graph = GraphClient(
        settings.graph_url,
        settings.graph_version,
        clock=lambda: clock.now().timestamp(),
        response_deadline=1.0,
    )
    return RenewalEngine(world, graph, clock=clock)


def hostile_spec(issuer: Issuer, case: str) -> dict[str, Any]:
    if case.startswith("expiry-") and issuer.endpoint == LOGIN:
        # The login answer's expiry is a date string: year 9999, year 1, a number.
        dates = {"expiry-1e30": "9999-12-31 23:59:59+00:00", "expiry-negative": "0001-01-01"}
        return respond_json(issuer.answer(FRESH, {"expires_in": dates.get(case, 12)}))
    return HOSTILE[case](issuer.answer)


@pytest.mark.parametrize("issuer", ISSUERS, ids=ISSUER_IDS)
def test_every_hostile_answer_is_a_clear_failure_that_stores_nothing(
    issuer: Issuer, sandbox, add, world, settings, emitted
):
    """One credential per issuer, every hostile answer in turn (setting up once keeps it fast)."""
    issuer.setup(sandbox, add)
    before = [(v.version, v.state, v.fingerprint) for v in world.versions(issuer.name)]
    current = world.reveal(issuer.name)
    engine = tight_engine(settings, world)
    try:
        for case in sorted(HOSTILE):
            sandbox.state.clear_faults()
            sandbox.fault(issuer.endpoint, kind="respond", **hostile_spec(issuer, case))
            out = engine.rotate(issuer.name, force=True)
            assert out.status == "failed", (case, out)
            assert out.message and out.retry_at is not None, case
            after = [(v.version, v.state, v.fingerprint) for v in world.versions(issuer.name)]
            assert after == before, case
            assert world.reveal(issuer.name) == current, case
            cred = world.get(issuer.name)
            assert cred.health is Health.FAILING and cred.rotation_step is None, case
            assert cred.health_reason and "Traceback" not in cred.health_reason, case
    finally:
        engine.close()
    assert len(sandbox.calls(issuer.endpoint)) >= len(HOSTILE)
    emitted.assert_absent(FRESH)


def test_an_issued_token_equal_to_the_current_one_is_refused(sandbox, add, world, engine):
    """Storing the current value again as a new version would revoke it with the old one."""
    setup_refresh(sandbox, add)
    current = world.reveal(NAME_META).reveal()
    sandbox.fault(EXCHANGE, kind="respond", json=meta_answer(current, {"expires_in": 5183944}))
    out = engine.rotate(NAME_META)
    assert out.status == "failed" and "version 1 already holds" in out.message, out
    assert [v.version for v in world.versions(NAME_META)] == [1]


def test_an_issued_token_held_by_another_credential_is_refused(sandbox, add, world, engine):
    """Found by fingerprint; the message never names the other tenant's credential."""
    setup_refresh(sandbox, add)
    other = sandbox.token("system_user")
    add("globex/other", other, issuer="manual")
    sandbox.fault(EXCHANGE, kind="respond", json=meta_answer(other, {"expires_in": 5183944}))
    out = engine.rotate(NAME_META)
    assert out.status == "failed" and "another credential" in out.message, out
    assert "globex" not in out.message
    assert [v.version for v in world.versions(NAME_META)] == [1]


# --- expiry values from debug_token (item 8) -----------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("expires_at", -62135596800),  # year 1
        ("expires_at", 253402300800),  # year 10000
        ("expires_at", 1e30),
        ("expires_at", "soon"),
        ("expires_at", True),
        ("data_access_expires_at", -1),
        ("issued_at", 32503680000),  # year 3000
    ],
)
def test_an_impossible_debug_token_instant_postpones_verification_and_stores_nothing(
    field: str, value: Any, sandbox, add, world, engine
):
    """No OverflowError after a row was written: the answer is refused before any use."""
    setup_refresh(sandbox, add)
    data = {
        "app_id": sandbox.app["id"],
        "type": "SYSTEM_USER",
        "is_valid": True,
        "expires_at": 0,
        "scopes": [],
    }
    sandbox.fault("GET /debug_token", kind="respond", json={"data": {**data, field: value}})
    out = engine.rotate(NAME_META)
    assert out.status == "deferred" and f"impossible {field}" in out.message, out
    pending = world.version(NAME_META, state=VersionState.PENDING)
    assert pending.meta.inspected_at is None and pending.meta.expires_at is not None
    assert world.version(NAME_META).version == 1
    out = engine.rotate(NAME_META)  # the fault is used up: the same pending is verified now
    assert (out.status, out.version) == ("rotated", pending.version), out


# --- transient errors back off (item 9) -----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"code": 2},
        {"code": 1},
        {"http_status": 502, "body": "<html><title>502 Bad Gateway</title></html>"},
    ],
    ids=["code-2", "code-1", "html-502"],
)
def test_transient_failures_back_off_exponentially_across_restarts(
    fault: dict[str, Any], sandbox, add, world, settings
):
    """Each attempt's wait is the policy's back-off for that attempt (not Meta's 2 s hint), and
    the count survives a new engine (a restarted process)."""
    from permatoken.service import build_engine

    add(NAME_META, sandbox.token("system_user_60d"), policy={"backoff_base": 100})
    sandbox.advance(45 * DAY)
    sandbox.fault(EXCHANGE, count=None, fraction=1.0, **fault)
    waits = []
    for attempt in range(1, 5):
        engine = build_engine(settings, world)  # a fresh process's engine each time
        try:
            out = engine.rotate(NAME_META, force=True)
            assert out.status == "failed" and out.retry_at is not None, out
            waits.append((out.retry_at - engine.clock.now()).total_seconds())
        finally:
            engine.close()
        raw_wait = 100 * 2 ** (attempt - 1)
        assert raw_wait / 2 - 1 <= waits[-1] <= raw_wait + 1, (attempt, waits)
    assert world.get(NAME_META).next_due_at is not None
    assert [v.version for v in world.versions(NAME_META)] == [1]


# --- a 190 from the exchange is confirmed first (item 10) ----------------------------------


def test_a_190_from_the_exchange_for_a_valid_token_is_a_failed_attempt(sandbox, add, world, engine):
    setup_refresh(sandbox, add)
    events: list[tuple[str, dict[str, Any]]] = []
    engine.events.subscribe(lambda event: events.append((event.kind, dict(event.detail))))
    sandbox.fault(EXCHANGE, code=190, subcode=463, message="Session has expired")
    out = engine.rotate(NAME_META)
    assert out.status == "failed", out
    assert "debug_token says the token is valid" in out.message
    cred = world.get(NAME_META)
    assert cred.health is Health.FAILING and cred.next_action == "renew"
    assert out.retry_at is not None and out.retry_at > engine.clock.now()
    failed = [d for k, d in events if k == "rotation.failed"]
    assert failed and "debug_token says the token is valid" in failed[-1]["reason"]
    assert failed[-1]["needs_human"] is False
    out = engine.rotate(NAME_META)
    assert (out.status, out.version) == ("rotated", 2), out


# --- debug_token's two shapes for a token it cannot parse (item 11) ------------------------


@pytest.fixture(params=["data_error", "top_level"])
def unparseable_shape(request, sandbox) -> str:
    sandbox.state.config.debug_token_unparseable = request.param
    return str(request.param)


def test_verification_of_an_unparseable_new_token_fails_in_either_shape(
    unparseable_shape, sandbox, add, world, engine
):
    setup_refresh(sandbox, add)
    sandbox.fault(EXCHANGE, kind="respond", json=meta_answer(FRESH, {"expires_in": 5183944}))
    out = engine.rotate(NAME_META)
    assert out.status == "failed" and "failed verification" in out.message, out
    assert "parse" in out.message.lower()
    assert [(v.version, v.state) for v in world.versions(NAME_META)] == [
        (1, VersionState.CURRENT),
        (2, VersionState.RETIRED),
    ]


def test_inspect_and_add_of_an_unparseable_token_say_so_in_either_shape(
    unparseable_shape, sandbox, cli, tmp_path
):
    assert cli("init").rc == 0
    secret = tmp_path / "app-secret"
    secret.write_text(sandbox.app["secret"])
    assert cli("app", "add", sandbox.app["id"], "--secret-file", str(secret)).rc == 0
    token = tmp_path / "token"
    token.write_text(FRESH)
    inspected = cli("inspect", "--app-id", sandbox.app["id"], "--token-file", str(token))
    text = " ".join((inspected.stdout + inspected.stderr).split())
    assert "parse" in text.lower() and "Traceback" not in text, text
    added = cli("add", "acme/x", "--app-id", sandbox.app["id"], "--token-file", str(token))
    text = " ".join((added.stdout + added.stderr).split())
    assert added.rc != 0 and "parse" in text.lower() and "Traceback" not in text, text
    assert cli("status", "--json").json() == []
