"""Webhooks and the deauthorize callback, received by a real HTTP server on loopback.

The receiver (``_receiver.py``) checks nothing itself: every signature is verified here with the
app secret from the fixtures and ``hmac``, independently of the sandbox's own signing code.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from _live_sandbox import ThreadSandbox, seeded_state
from permatoken.sandbox import SandboxConfig, SandboxState
from permatoken.sandbox.signing import retry_delay

from ._receiver import WAIT, Receiver
from ._support import bearer

pytestmark = pytest.mark.anyio

TOKEN = "verify-me"
FAST = {"webhook_retry_base_seconds": 0.01, "webhook_retry_cap_seconds": 0.05}


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(**FAST)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(TOKEN) as server:
        yield server


@pytest.fixture(autouse=True)
def _close_outbox(state: SandboxState) -> Iterator[None]:
    yield
    state.webhooks.close()


async def configure(client: httpx.AsyncClient, url: str, **extra: Any) -> httpx.Response:
    body = {"webhook_url": url, "webhook_verify_token": TOKEN, **extra}
    return await client.patch("/_sandbox/config", json=body)


def secret_of(fx: dict[str, Any], app_id: str) -> str:
    return str(next(a["secret"] for a in fx["apps"] if a["id"] == app_id))


def signed_by(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def change(body: bytes) -> dict[str, Any]:
    envelope = json.loads(body)
    assert envelope["object"] == "whatsapp_business_account"
    (entry,) = envelope["entry"]
    (only,) = entry["changes"]
    assert only["field"] == "account_update"
    return {"entry_id": entry["id"], "time": entry["time"], **only["value"]}


def free_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/gone"


class TestHandshake:
    async def test_the_url_is_verified_before_it_is_saved(self, client, state, receiver):
        r = await configure(client, receiver.url + "/hook")
        assert r.status_code == 200 and r.json()["webhook_url"] == receiver.url + "/hook"
        (get,) = [x for x in receiver.requests if x.method == "GET"]
        assert get.path == "/hook" and get.query["hub.mode"] == ["subscribe"]
        assert get.query["hub.verify_token"] == [TOKEN]
        assert get.query["hub.challenge"][0].isdigit()
        assert state.config.webhook_verify_token == TOKEN

    @pytest.mark.parametrize("failure", ["wrong token", "no echo", "unreachable", "no token"])
    async def test_a_failed_handshake_refuses_everything_and_changes_nothing(
        self, client, state, receiver, emitted, failure
    ):
        url, body = receiver.url + "/hook", {"webhook_verify_token": TOKEN}
        if failure == "wrong token":
            body["webhook_verify_token"] = "not-the-token"
        elif failure == "no echo":
            receiver.echo_challenge = False
        elif failure == "unreachable":
            url = free_port_url()
        else:
            body = {}
        before = state.config
        r = await client.patch(
            "/_sandbox/config", json={"webhook_url": url, "webhook_duplicates": True, **body}
        )
        assert r.status_code == 400, r.text
        message = r.json()["error"]["message"]
        assert ("verification failed" in message) or ("verify_token" in message)
        assert "not-the-token" not in message
        assert state.config is before and state.config.webhook_url is None
        emitted.add("control answer", r.text)
        emitted.assert_absent(TOKEN, "not-the-token")

    async def test_a_new_verify_token_alone_is_verified_again(self, client, state, receiver):
        await configure(client, receiver.url)
        r = await client.patch("/_sandbox/config", json={"webhook_verify_token": "rotated"})
        assert r.status_code == 400 and state.config.webhook_verify_token == TOKEN
        receiver.verify_token = "rotated"
        r = await client.patch("/_sandbox/config", json={"webhook_verify_token": "rotated"})
        assert r.status_code == 200 and state.config.webhook_verify_token == "rotated"
        assert len([x for x in receiver.requests if x.method == "GET"]) == 3
        r = await client.patch("/_sandbox/config", json={"webhook_duplicates": True})
        assert r.status_code == 200  # other knobs need no handshake
        assert len([x for x in receiver.requests if x.method == "GET"]) == 3

    async def test_bad_webhook_settings_are_refused(self, client, state):
        for body in (
            {"webhook_url": 5, "webhook_verify_token": TOKEN},
            {"webhook_url": "ftp://x", "webhook_verify_token": TOKEN},
            {"webhook_url": "http://[", "webhook_verify_token": TOKEN},
            {"deauthorize_url": "nope"},
            {"webhook_verify_token": ""},
            {"webhook_reorder_batch": 0},
            {"webhook_retry_base_seconds": 0},
            {"partner_event_entry_id": "elsewhere"},
        ):
            r = await client.patch("/_sandbox/config", json=body)
            assert r.status_code == 400, body
        assert state.config == SandboxConfig(**FAST)

    def test_the_python_api_runs_the_same_handshake(self, state, receiver):
        with pytest.raises(ValueError, match="verification failed"):
            state.set_webhook(receiver.url, "wrong")
        assert state.config.webhook_url is None
        state.set_webhook(receiver.url, TOKEN)
        assert state.config.webhook_url == receiver.url
        state.set_webhook(None)
        assert state.config.webhook_url is None


class TestDeliveries:
    async def test_uninstall_sends_one_signed_event_per_waba(self, client, state, fx, receiver):
        await configure(client, receiver.url + "/hook")
        done = (await client.post("/_sandbox/embedded_signup", json={})).json()
        second = state.create_waba(done["business_id"], "Second WABA")["id"]
        receiver.wait_for(1)  # Embedded Signup announced PARTNER_APP_INSTALLED
        r = await client.post(f"/_sandbox/businesses/{done['business_id']}/uninstall")
        posts = receiver.wait_for(3)[1:]
        app_id = fx["apps"][0]["id"]
        secret = secret_of(fx, app_id)
        for post in posts:
            assert post.headers["x-hub-signature-256"] == signed_by(secret, post.body)
            assert post.headers["content-type"] == "application/json"
        values = [change(p.body) for p in posts]
        assert sorted(v["entry_id"] for v in values) == sorted([done["waba_id"], second])
        for value in values:
            assert value["event"] == "PARTNER_APP_UNINSTALLED"
            assert value["time"] == int(state.clock.now())
            assert value["waba_info"] == {
                "waba_id": value["entry_id"],
                "owner_business_id": done["business_id"],
                "partner_app_id": app_id,
            }
        assert state.webhooks.wait_idle(WAIT)
        log = (await client.get("/_sandbox/webhooks")).json()["data"]
        mine = [d for d in log if d["id"] in {x["id"] for x in r.json()["deliveries"]}]
        assert [d["status"] for d in mine] == ["delivered", "delivered"]
        assert all(d["attempts"][0]["status_code"] == 200 for d in mine)

    async def test_a_refused_delivery_is_retried_until_200(self, client, state, fx, receiver):
        await configure(client, receiver.url)
        receiver.statuses.extend([500, 404])
        state.account_event(fx["wabas"][1]["id"], "ACCOUNT_OFFBOARDED")
        posts = receiver.wait_for(3)
        assert [p.status for p in posts] == [500, 404, 200]
        assert len({p.body for p in posts}) == 1
        assert state.webhooks.wait_idle(WAIT)
        (delivery,) = state.webhook_deliveries()
        assert delivery["status"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 404, 200]

    @pytest.mark.parametrize("config", [SandboxConfig(**FAST, webhook_retry_window_seconds=0.2)])
    async def test_an_unreachable_receiver_is_retried_then_given_up(self, client, state, fx):
        state.config = dataclasses.replace(
            state.config, webhook_url=free_port_url(), webhook_verify_token=TOKEN
        )
        state.account_event(fx["wabas"][1]["id"], "ACCOUNT_OFFBOARDED")
        assert state.webhooks.wait_idle(WAIT)
        (delivery,) = state.webhook_deliveries()
        assert delivery["status"] == "failed" and len(delivery["attempts"]) >= 2
        assert {a["error"] for a in delivery["attempts"]} == {"ConnectError"}

    @pytest.mark.parametrize("config", [SandboxConfig(**FAST, webhook_duplicates=True)])
    async def test_duplicates_switch_sends_every_event_twice(self, client, state, fx, receiver):
        await configure(client, receiver.url)
        state.account_event(fx["wabas"][1]["id"], "ACCOUNT_DELETED")
        first, second = receiver.wait_for(2)
        assert first.body == second.body
        assert first.headers["x-hub-signature-256"] == second.headers["x-hub-signature-256"]
        assert [d["copy"] for d in state.webhook_deliveries()] == [1, 2]

    @pytest.mark.parametrize("config", [SandboxConfig(**FAST, webhook_reorder=True)])
    async def test_reorder_switch_holds_a_batch_and_sends_it_newest_first(
        self, client, state, fx, receiver
    ):
        await configure(client, receiver.url)
        client_business = fx["businesses"][1]["id"]
        state.uninstall_app(client_business)
        assert [d["status"] for d in state.webhook_deliveries()] == ["held"]
        assert receiver.posts() == []
        state.install_app(client_business)
        events = [change(p.body)["event"] for p in receiver.wait_for(2)]
        assert events == ["PARTNER_APP_INSTALLED", "PARTNER_APP_UNINSTALLED"]
        state.account_event(fx["wabas"][0]["id"], "DISABLED_UPDATE")  # still subscribed
        r = await client.post("/_sandbox/webhooks/flush")
        assert [d["event"] for d in r.json()["data"]] == ["DISABLED_UPDATE"]
        assert change(receiver.wait_for(3)[2].body)["ban_info"]["waba_ban_state"] == "DISABLE"
        state.account_event(fx["wabas"][0]["id"], "ACCOUNT_OFFBOARDED")
        assert state.webhook_deliveries()[-1]["status"] == "held"
        await client.patch("/_sandbox/config", json={"webhook_reorder": False})
        assert change(receiver.wait_for(4)[3].body)["event"] == "ACCOUNT_OFFBOARDED"

    async def test_only_subscribed_wabas_send_their_events(self, client, state, fx, receiver):
        await configure(client, receiver.url)
        done = (await client.post("/_sandbox/embedded_signup", json={})).json()
        receiver.wait_for(1)  # PARTNER_APP_INSTALLED needs no subscription
        app = fx["apps"][0]
        r = await client.get(
            "/oauth/access_token",
            params={"client_id": app["id"], "client_secret": app["secret"], "code": done["code"]},
        )
        token = r.json()["access_token"]
        state.account_event(done["waba_id"], "ACCOUNT_OFFBOARDED")
        undelivered = state.webhook_deliveries()[-1]
        assert (
            undelivered["status"] == "undeliverable" and "not subscribed" in undelivered["reason"]
        )
        await client.post(f"/{done['waba_id']}/subscribed_apps", headers=bearer(token))
        state.account_event(done["waba_id"], "ACCOUNT_RECONNECTED")
        assert change(receiver.wait_for(2)[1].body)["event"] == "ACCOUNT_RECONNECTED"

    @pytest.mark.parametrize(
        "config", [SandboxConfig(**FAST, embedded_signup_sends_installed=False)]
    )
    async def test_signup_can_stay_silent(self, client, state, receiver):
        await configure(client, receiver.url)
        await client.post("/_sandbox/embedded_signup", json={})
        assert state.webhook_deliveries() == []

    @pytest.mark.parametrize(
        "config", [SandboxConfig(**FAST, partner_event_entry_id="partner_business")]
    )
    async def test_partner_events_can_carry_the_partner_business_as_entry_id(
        self, client, state, fx, receiver
    ):
        await configure(client, receiver.url)
        state.uninstall_app(fx["businesses"][1]["id"])
        (post,) = receiver.wait_for(1)
        assert change(post.body)["entry_id"] == fx["businesses"][0]["id"]
        assert change(post.body)["waba_info"]["waba_id"] == fx["wabas"][1]["id"]

    @pytest.mark.parametrize("config", [SandboxConfig(**FAST, webhook_timeout_seconds=600)])
    async def test_a_slow_receiver_never_holds_up_the_sandbox(self, client, state, fx, receiver):
        """The trigger returns and the state lock stays free while a delivery is in flight."""
        await configure(client, receiver.url)
        receiver.gate.clear()  # every POST now blocks until the test opens the gate
        trigger = threading.Thread(
            target=state.account_event, args=(fx["wabas"][1]["id"], "ACCOUNT_OFFBOARDED")
        )
        trigger.start()
        trigger.join(WAIT)
        assert not trigger.is_alive()
        assert receiver.arrived.wait(WAIT) and receiver.posts() == []
        assert state.lock.acquire(timeout=WAIT)  # no other thread (the sender) holds it
        state.lock.release()
        me = await client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"]))
        assert me.status_code == 200
        assert state.webhook_deliveries()[0]["status"] == "pending"
        receiver.gate.set()
        receiver.wait_for(1)

    async def test_reset_forgets_deliveries_and_pending_retries(self, client, state, fx, receiver):
        await configure(client, receiver.url)
        state.config = dataclasses.replace(
            state.config, webhook_retry_base_seconds=600, webhook_retry_cap_seconds=600
        )
        receiver.statuses.append(500)
        state.account_event(fx["wabas"][1]["id"], "ACCOUNT_OFFBOARDED")
        assert state.webhooks.wait_until(lambda log: len(log[0]["attempts"]) == 1, WAIT)
        # The retry now waits ten minutes in the queue.
        assert (await client.post("/_sandbox/reset", json={})).status_code == 200
        assert (await client.get("/_sandbox/webhooks")).json() == {"data": []}
        assert state.webhooks.wait_idle(WAIT)
        assert state.config.webhook_url == receiver.url  # like every knob, kept across resets

    async def test_nothing_secret_is_logged_or_listed(self, client, state, fx, receiver, emitted):
        await configure(client, receiver.url)
        receiver.statuses.append(500)
        state.uninstall_app(fx["businesses"][1]["id"])
        receiver.wait_for(2)
        assert state.webhooks.wait_idle(WAIT)
        listed = (await client.get("/_sandbox/webhooks")).text
        emitted.add("webhooks log", listed)
        secret = secret_of(fx, fx["apps"][0]["id"])
        emitted.assert_absent(secret, TOKEN, fx["tokens"]["bisu"]["value"])
        assert "x-hub-signature" not in listed.lower()


class TestDeauthorize:
    async def test_signed_request_verifies_with_the_app_secret(self, client, state, fx, receiver):
        url = receiver.url + "/deauth"
        assert (await client.patch("/_sandbox/config", json={"deauthorize_url": url})).is_success
        assert [r for r in receiver.requests if r.method == "GET"] == []  # no handshake here
        user = fx["tokens"]["user_long"]["user_id"]
        r = await client.post("/_sandbox/deauthorize", json={"user_id": user})
        assert r.json()["revoked_tokens"] == 1
        (post,) = receiver.wait_for(1, "/deauth")
        assert post.headers["content-type"] == "application/x-www-form-urlencoded"
        (signed,) = parse_qs(post.body.decode())["signed_request"]
        encoded_sig, encoded_payload = signed.split(".", 1)
        secret = secret_of(fx, fx["apps"][0]["id"]).encode()
        expected = hmac.new(secret, encoded_payload.encode(), hashlib.sha256).digest()
        padded = encoded_sig + "=" * (-len(encoded_sig) % 4)
        assert hmac.compare_digest(base64.urlsafe_b64decode(padded), expected)
        payload = json.loads(
            base64.urlsafe_b64decode(encoded_payload + "=" * (-len(encoded_payload) % 4))
        )
        assert payload == {
            "algorithm": "HMAC-SHA256",
            "issued_at": int(state.clock.now()),
            "user_id": user,
        }
        assert state.webhooks.wait_idle(WAIT)
        assert state.webhook_deliveries()[0]["status"] == "delivered"


def test_retry_schedule_doubles_from_the_base_up_to_the_cap() -> None:
    """The documented defaults: 15 s, 30 s, 60 s … capped at one hour."""
    config = SandboxConfig()
    delays = [
        retry_delay(n, config.webhook_retry_base_seconds, config.webhook_retry_cap_seconds)
        for n in range(1, 11)
    ]
    assert delays == [15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert config.webhook_retry_window_seconds == 7 * 86_400
    assert retry_delay(10_000, 1.0, 5.0) == 5.0


def test_a_live_sandbox_drives_the_whole_flow_over_http(receiver) -> None:
    """Embedded Signup → code exchange → subscribe → configure → uninstall, all over loopback."""
    state = seeded_state(SandboxConfig(**FAST))
    with ThreadSandbox(state) as live, httpx.Client(base_url=live.url, timeout=WAIT) as http:
        try:
            fx = http.get("/_sandbox/fixtures").json()
            app = fx["apps"][0]
            done = http.post("/_sandbox/embedded_signup", json={"business_name": "Live"}).json()
            token = http.get(
                "/v25.0/oauth/access_token",
                params={
                    "client_id": app["id"],
                    "client_secret": app["secret"],
                    "code": done["code"],
                },
            ).json()["access_token"]
            r = http.post(f"/v25.0/{done['waba_id']}/subscribed_apps", headers=bearer(token))
            assert r.json() == {"success": True}
            r = http.patch(
                "/_sandbox/config",
                json={"webhook_url": receiver.url, "webhook_verify_token": TOKEN},
            )
            assert r.status_code == 200, r.text
            http.post(f"/_sandbox/businesses/{done['business_id']}/uninstall")
            (post,) = receiver.wait_for(1)
            assert post.headers["x-hub-signature-256"] == signed_by(app["secret"], post.body)
            assert change(post.body)["event"] == "PARTNER_APP_UNINSTALLED"
            info = http.get(
                "/v25.0/debug_token",
                params={"input_token": token},
                headers=bearer(fx["tokens"]["app"]["value"]),
            ).json()["data"]
            assert (info["is_valid"], info["error"]["subcode"]) == (False, 458)
        finally:
            state.webhooks.close()
