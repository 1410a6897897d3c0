"""``/webhooks/meta`` and ``/webhooks/meta/deauthorize`` on a live broker, fed by the sandbox
(Meta's side) and by bodies signed here with ``hmac`` (independently of either side's code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from _live_sandbox import ThreadSandbox
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.notify.delivery import Outbox
from permatoken.store import Store
from permatoken.store.providers import Deliveries
from permatoken.timeutil import SystemClock

from .conftest import VERIFY_TOKEN, LiveBroker, app_of, envelope, sign, sign_up, until


def health(store: Store, name: str) -> str:
    return store.get(name).health.value


def notices(store: Store, name: str) -> list[dict[str, Any]]:
    return Outbox(store, owner="test", clock=SystemClock()).all_notices(name)


def post(client: httpx.Client, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return client.post("/webhooks/meta", content=body, headers=headers)


def rows(store: Store) -> list[dict[str, Any]]:
    return Deliveries(store).all()


def settled(store: Store) -> bool:
    return all(r["state"] != "received" for r in rows(store))


# --- the verification handshake ---------------------------------------------------------------


def test_handshake_answers_the_challenge_only_for_the_right_verify_token(
    live_broker: LiveBroker,
) -> None:
    """Right token → 200 with the challenge as the body; wrong or missing token → 403."""
    c = live_broker.client()
    ok = c.get(
        "/webhooks/meta",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN + "x", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    ):
        r = c.get("/webhooks/meta", params=params)
        assert r.status_code == 403 and "1" not in r.text.replace("403", "")
    assert VERIFY_TOKEN not in c.get("/webhooks/meta", params={"hub.verify_token": "x"}).text


def test_sandbox_registers_the_webhook_through_the_handshake(
    live_broker: LiveBroker, sandbox: ThreadSandbox
) -> None:
    """Meta's handshake (run by the sandbox) passes with our token and fails with another."""
    url = f"{live_broker.url}/webhooks/meta"
    with pytest.raises(ValueError, match="403"):
        sandbox.state.set_webhook(url, "not-the-token")
    sandbox.state.set_webhook(url, VERIFY_TOKEN)
    assert sandbox.state.config.webhook_url == url


def test_handshake_without_a_configured_verify_token_is_refused(
    broker_settings: Any, store: Store, engine: Any, broker_config: Any
) -> None:
    """No PERMATOKEN_WEBHOOK_VERIFY_TOKEN: 404, whatever is presented."""
    settings = broker_settings.model_copy(update={"webhook_verify_token": None})
    with LiveBroker(settings, store, engine, broker_config) as lb:
        r = lb.client().get(
            "/webhooks/meta",
            params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "5"},
        )
        assert r.status_code == 404 and r.text != "5"


# --- signatures -------------------------------------------------------------------------------


def test_forged_missing_and_altered_signatures_change_nothing(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """Missing → 401; another secret, garbage, or a body altered after signing → 403; no row,
    the credential still ok."""
    su = sign_up(sandbox, store)
    _, secret = app_of(sandbox.state.fixtures())
    c = live_broker.client()
    body = envelope(su.waba_id, "PARTNER_APP_UNINSTALLED", int(time.time()))
    assert post(c, body, None).status_code == 401
    assert post(c, body, sign("not-the-secret", body)).status_code == 403
    assert post(c, body, "sha256=" + "0" * 64).status_code == 403
    assert post(c, body, "sha1=abc").status_code == 403
    altered = body.replace(b"PARTNER_APP_UNINSTALLED", b"PARTNER_APP_INSTALLED__")
    assert post(c, altered, sign(secret, body)).status_code == 403
    assert rows(store) == [] and health(store, su.name) == "ok" and notices(store, su.name) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"entry": 5}',
        b'{"entry":[{"time":"x","changes":[]}]}',
        b"\xff" * 100,
        b"[" * 50_000,
    ],
    ids=["empty", "truncated", "array", "null", "entry-not-list", "bad-time", "binary", "deep"],
)
def test_junk_bodies_are_refused_cleanly_never_500(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store, body: bytes
) -> None:
    """Signed junk → 400; unsigned junk → 401; never a 500, nothing recorded."""
    app_id, secret = app_of(sandbox.state.fixtures())
    store.put_app(app_id, Secret(secret))
    c = live_broker.client()
    assert post(c, body, sign(secret, body)).status_code == 400
    assert post(c, body, None).status_code == 401
    assert rows(store) == []


def test_a_huge_body_is_refused_before_it_is_read_whole(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    su = sign_up(sandbox, store)
    _, secret = app_of(sandbox.state.fixtures())
    body = b'{"entry":[' + b" " * (2 * 1024 * 1024) + b"]}"
    r = post(live_broker.client(), body, sign(secret, body))
    assert r.status_code == 413 and rows(store) == [] and health(store, su.name) == "ok"


# --- handling ---------------------------------------------------------------------------------


def test_a_replayed_delivery_is_recorded_and_handled_once(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """The same signed body three times: one row, one notice, credential invalid."""
    su = sign_up(sandbox, store)
    sandbox.state.uninstall_app(su.business_id)  # Meta's side: the token really dies
    _, secret = app_of(sandbox.state.fixtures())
    body = envelope(
        su.waba_id,
        "PARTNER_APP_UNINSTALLED",
        int(time.time()),
        waba_info={
            "waba_id": su.waba_id,
            "owner_business_id": su.business_id,
            "partner_app_id": su.app_id,
        },
    )
    c = live_broker.client()
    for _ in range(3):
        assert post(c, body, sign(secret, body)).status_code == 200
    until(lambda: settled(store) and health(store, su.name) == "invalid")
    assert len(rows(store)) == 1 and rows(store)[0]["state"] == "handled"
    assert [n["event"] for n in notices(store, su.name)] == ["account_update"]


def test_out_of_order_uninstall_older_than_an_install_only_reinspects(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """INSTALLED at t+10 arrives first, UNINSTALLED at t second: the stale one marks nothing,
    and since Meta says the token is valid the credential stays ok, with no notice."""
    su = sign_up(sandbox, store)
    _, secret = app_of(sandbox.state.fixtures())
    t = int(time.time())
    info = {"waba_id": su.waba_id, "owner_business_id": su.business_id, "partner_app_id": su.app_id}
    newer = envelope(su.waba_id, "PARTNER_APP_INSTALLED", t + 10, waba_info=info)
    older = envelope(su.waba_id, "PARTNER_APP_UNINSTALLED", t, waba_info=info)
    c = live_broker.client()
    assert post(c, newer, sign(secret, newer)).status_code == 200
    until(lambda: settled(store) and len(rows(store)) == 1)
    assert post(c, older, sign(secret, older)).status_code == 200
    until(lambda: settled(store) and len(rows(store)) == 2)
    assert [r["state"] for r in rows(store)] == ["handled", "stale"]
    assert health(store, su.name) == "ok" and notices(store, su.name) == []


def test_in_order_uninstall_after_install_marks_the_credential(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """The control for the test above: the same two events in time order mark it invalid."""
    su = sign_up(sandbox, store)
    sandbox.state.uninstall_app(su.business_id)
    _, secret = app_of(sandbox.state.fixtures())
    t = int(time.time())
    info = {"waba_id": su.waba_id, "owner_business_id": su.business_id, "partner_app_id": su.app_id}
    first = envelope(su.waba_id, "PARTNER_APP_INSTALLED", t, waba_info=info)
    then = envelope(su.waba_id, "PARTNER_APP_UNINSTALLED", t + 10, waba_info=info)
    c = live_broker.client()
    post(c, first, sign(secret, first))
    until(lambda: settled(store) and len(rows(store)) == 1)
    post(c, then, sign(secret, then))
    until(lambda: settled(store) and len(rows(store)) == 2)
    assert [r["state"] for r in rows(store)] == ["handled", "handled"]
    assert health(store, su.name) == "invalid"


def test_a_delivery_for_an_unknown_waba_is_recorded_and_ignored(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    su = sign_up(sandbox, store)
    _, secret = app_of(sandbox.state.fixtures())
    body = envelope("123456789", "PARTNER_APP_UNINSTALLED", int(time.time()))
    assert post(live_broker.client(), body, sign(secret, body)).status_code == 200
    until(lambda: settled(store) and len(rows(store)) == 1)
    row = rows(store)[0]
    assert row["state"] == "ignored" and "123456789" in row["outcome"]["reason"]
    assert health(store, su.name) == "ok" and notices(store, su.name) == []


def test_sandbox_uninstall_makes_the_credential_unhealthy_with_a_notice(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """The whole path: Meta (the sandbox) removes the app and delivers PARTNER_APP_UNINSTALLED;
    status, the token API and a notice say so. The latency is measured and printed."""
    su = sign_up(sandbox, store)
    other = sign_up(sandbox, store, tenant="globex")
    sandbox.state.set_webhook(f"{live_broker.url}/webhooks/meta", VERIFY_TOKEN)
    key = live_broker.key("app", "acme/*")
    c = live_broker.client(key)
    assert c.get(f"/v1/tokens/{su.name}").json()["health"] == "ok"
    started = time.perf_counter()
    sandbox.state.uninstall_app(su.business_id)
    until(lambda: health(store, su.name) == "invalid" and notices(store, su.name), timeout=30)
    latency = time.perf_counter() - started
    print(f"\nuninstall -> health invalid + notice: {latency * 1000:.0f} ms")
    until(lambda: c.get(f"/v1/tokens/{su.name}").json()["health"] == "invalid", timeout=10)
    (notice,) = notices(store, su.name)
    assert "PARTNER_APP_UNINSTALLED" in notice["body"] and "embedded-signup" in notice["body"]
    assert "Meta confirms the token is dead" in notice["body"]
    assert su.token not in notice["body"]
    assert "PARTNER_APP_UNINSTALLED" in (store.get(su.name).health_reason or "")
    # Another client business is untouched.
    assert health(store, other.name) == "ok" and notices(store, other.name) == []


def test_deauthorize_callback_forged_is_refused_genuine_marks_the_users_tokens(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    world = sandbox.state.fixtures()
    app_id, secret = app_of(world)
    user = world["tokens"]["user_long"]
    store.put_app(app_id, Secret(secret))
    store.add_credential(
        NewCredential(name="acme/user", app_id=app_id),
        Secret(user["value"]),
        VersionMeta(token_type="USER", user_id=user["user_id"]),
    )
    c = live_broker.client()
    payload = json.dumps(
        {"algorithm": "HMAC-SHA256", "issued_at": int(time.time()), "user_id": user["user_id"]}
    ).encode()
    encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    forged = hmac.new(b"wrong-secret", encoded.encode(), hashlib.sha256).digest()
    forged_sr = base64.urlsafe_b64encode(forged).decode().rstrip("=") + "." + encoded
    url = "/webhooks/meta/deauthorize"
    assert c.post(url, data={"signed_request": forged_sr}).status_code == 403
    assert c.post(url, data={}).status_code == 401
    assert c.post(url, content=b"\xff\xfe").status_code == 401
    assert c.post(url, data={"signed_request": "a.b.c"}).status_code == 403
    assert rows(store) == [] and health(store, "acme/user") == "ok"
    sandbox.state.config.deauthorize_url = f"{live_broker.url}{url}"
    sandbox.state.deauthorize(user["user_id"], app_id)
    until(lambda: health(store, "acme/user") == "invalid" and notices(store, "acme/user"))
    (row,) = rows(store)
    assert row["source"] == "deauthorize" and row["state"] == "handled"


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_uninstall_on_postgresql(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """The same path on PostgreSQL (the WABA lookup casts JSON to text there too)."""
    su = sign_up(sandbox, store)
    sandbox.state.set_webhook(f"{live_broker.url}/webhooks/meta", VERIFY_TOKEN)
    sandbox.state.uninstall_app(su.business_id)
    until(lambda: health(store, su.name) == "invalid" and notices(store, su.name))
    with store.read() as conn:
        assert conn.execute(sa.text("select count(*) from meta_deliveries")).scalar() >= 1


def test_an_uninstall_of_one_app_leaves_another_apps_credential_on_the_same_waba(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """Tenant/app boundary: app A's PARTNER_APP_UNINSTALLED (signed by A) never marks a
    credential of app B, even on the same WABA; A's own credential is marked."""
    su = sign_up(sandbox, store)
    world = sandbox.state.fixtures()
    other_app, other_secret = app_of(world, 1)
    store.put_app(other_app, Secret(other_secret))
    store.add_credential(
        NewCredential(name="globex/same-waba", app_id=other_app, waba_ids=(su.waba_id,)),
        Secret("EAAother" + "p" * 40),
        VersionMeta(token_type="SYSTEM_USER"),
    )
    sandbox.state.uninstall_app(su.business_id)
    _, secret = app_of(world)
    info = {"waba_id": su.waba_id, "owner_business_id": su.business_id, "partner_app_id": su.app_id}
    body = envelope(su.waba_id, "PARTNER_APP_UNINSTALLED", int(time.time()), waba_info=info)
    assert post(live_broker.client(), body, sign(secret, body)).status_code == 200
    until(lambda: settled(store) and len(rows(store)) == 1)
    assert health(store, su.name) == "invalid"
    assert health(store, "globex/same-waba") == "ok" and notices(store, "globex/same-waba") == []
    assert rows(store)[0]["app_id"] == su.app_id


def test_verified_deliveries_are_forwarded_unchanged_and_a_failed_forward_is_retried(
    broker_settings: Any, store: Store, engine: Any, broker_config: Any, sandbox: ThreadSandbox
) -> None:
    """With ``webhook_forward_url`` the application gets Meta's bytes and signature (so its own
    check passes); forged deliveries never reach it; when it answers 500 Meta gets a 502 and
    its retry is forwarded again, while the change is still recorded once."""
    from sandbox._receiver import Receiver

    su = sign_up(sandbox, store)
    _, secret = app_of(sandbox.state.fixtures())
    with Receiver() as app:
        settings = broker_settings.model_copy(
            update={"webhook_forward_url": f"{app.url}/whatsapp/hook"}
        )
        with LiveBroker(settings, store, engine, broker_config) as lb:
            c = lb.client()
            message = b'{"object":"whatsapp_business_account","entry":[{"id":"1","time":1,"changes":[{"field":"messages","value":{}}]}]}'
            assert post(c, message, sign(secret, message)).status_code == 200
            assert post(c, message, sign("forged", message)).status_code == 403
            app.statuses.append(500)
            body = envelope(su.waba_id, "ACCOUNT_OFFBOARDED", int(time.time()))
            assert post(c, body, sign(secret, body)).status_code == 502
            assert post(c, body, sign(secret, body)).status_code == 200
            until(lambda: settled(store) and health(store, su.name) == "needs_human")
    got = [(r.path, r.body, r.headers["x-hub-signature-256"]) for r in app.requests]
    assert got == [
        ("/whatsapp/hook", message, sign(secret, message)),
        ("/whatsapp/hook", body, sign(secret, body)),
        ("/whatsapp/hook", body, sign(secret, body)),
    ]
    assert len(rows(store)) == 1


def test_sandbox_reordering_install_before_uninstall_still_ends_dead_with_a_notice(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store
) -> None:
    """The sandbox removes the app, adds it back, and delivers the two events newest first:
    the install's re-inspection finds the token dead (an install revives nothing), so the
    credential ends invalid and a human hears of it, whatever the order."""
    su = sign_up(sandbox, store)
    sandbox.state.set_webhook(f"{live_broker.url}/webhooks/meta", VERIFY_TOKEN)
    sandbox.state.config.webhook_reorder = True
    sandbox.state.uninstall_app(su.business_id)
    sandbox.state.clock.advance(10)  # the install is ten seconds newer
    sandbox.state.install_app(su.business_id)
    until(lambda: len(rows(store)) == 2 and settled(store))
    got = [(r["event"], r["state"]) for r in rows(store)]
    assert got == [("PARTNER_APP_INSTALLED", "handled"), ("PARTNER_APP_UNINSTALLED", "stale")]
    assert health(store, su.name) == "invalid"
    assert notices(store, su.name), "a human must hear of the dead token"
