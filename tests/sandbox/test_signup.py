"""Embedded Signup, ``subscribed_apps`` and the effects of a client business's actions on tokens.

Deliveries themselves (signatures, retries, order) are in ``test_webhooks.py``; here no webhook
URL is configured, so every event is logged as undeliverable and nothing leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from permatoken.sandbox import SandboxConfig, SandboxState

from ._support import TEXT, bearer

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _close_outbox(state: SandboxState) -> Iterator[None]:
    yield
    state.webhooks.close()


async def signup(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/_sandbox/embedded_signup", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def exchange(client: httpx.AsyncClient, fx: dict[str, Any], code: str) -> httpx.Response:
    app = fx["apps"][0]
    params = {"client_id": app["id"], "client_secret": app["secret"], "code": code}
    return await client.get("/v25.0/oauth/access_token", params=params)


async def onboard(client: httpx.AsyncClient, fx: dict[str, Any]) -> tuple[dict[str, Any], str]:
    done = await signup(client)
    r = await exchange(client, fx, done["code"])
    assert r.status_code == 200, r.text
    return done, str(r.json()["access_token"])


async def debug(client: httpx.AsyncClient, fx: dict[str, Any], token: str) -> dict[str, Any]:
    r = await client.get(
        "/v25.0/debug_token",
        params={"input_token": token},
        headers=bearer(fx["tokens"]["app"]["value"]),
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def send(client: httpx.AsyncClient, phone_id: str, token: str) -> httpx.Response:
    return await client.post(f"/v25.0/{phone_id}/messages", json=TEXT, headers=bearer(token))


class TestEmbeddedSignup:
    async def test_signup_creates_a_business_waba_number_and_a_code(self, client, state, fx):
        done = await signup(client, business_name="Acme Shoes")
        assert set(done) == {"code", "business_id", "waba_id", "phone_number_id"}
        assert state.businesses[done["business_id"]].name == "Acme Shoes"
        assert state.wabas[done["waba_id"]].business_id == done["business_id"]
        assert state.phone_numbers[done["phone_number_id"]].waba_id == done["waba_id"]
        assert (done["business_id"], fx["apps"][0]["id"]) in state.installations

    async def test_the_code_gives_a_business_token_scoped_to_the_new_waba(self, client, fx):
        done, token = await onboard(client, fx)
        info = await debug(client, fx, token)
        assert info["type"] == "SYSTEM_USER" and info["expires_at"] == 0 and info["is_valid"]
        assert info["granular_scopes"] == [
            {"scope": "whatsapp_business_management", "target_ids": [done["waba_id"]]},
            {"scope": "whatsapp_business_messaging", "target_ids": [done["waba_id"]]},
        ]
        me = await client.get("/me", params={"fields": "client_business_id"}, headers=bearer(token))
        assert me.json()["client_business_id"] == done["business_id"]
        assert (await send(client, done["phone_number_id"], token)).status_code == 200

    async def test_the_code_works_once(self, client, fx):
        done = await signup(client)
        assert (await exchange(client, fx, done["code"])).status_code == 200
        error = (await exchange(client, fx, done["code"])).json()["error"]
        assert (error["code"], error["error_subcode"]) == (100, 36009)

    async def test_the_code_lives_30_seconds_on_the_sandbox_clock(self, client, fx, state):
        fresh, stale = await signup(client), await signup(client)
        state.clock.advance(30)
        assert (await exchange(client, fx, fresh["code"])).status_code == 200
        state.clock.advance(1)
        error = (await exchange(client, fx, stale["code"])).json()["error"]
        assert (error["code"], error["error_subcode"]) == (100, 36007)

    async def test_another_app_and_bad_input(self, client, state, fx):
        other = fx["apps"][1]
        done = await signup(client, app_id=other["id"])
        assert (done["business_id"], other["id"]) in state.installations
        assert (
            await client.post("/_sandbox/embedded_signup", json={"app_id": "9"})
        ).status_code == 404
        for body in ({"business_name": ""}, {"business_name": 5}, {"app_id": 1}):
            r = await client.post("/_sandbox/embedded_signup", json=body)
            assert r.status_code == 400 and r.json()["error"]["message"], body
        assert len(state.businesses) == 3  # refusals created nothing


class TestSubscribedApps:
    async def test_round_trip_with_the_business_token(self, client, fx):
        done, token = await onboard(client, fx)
        path = f"/v25.0/{done['waba_id']}/subscribed_apps"
        assert (await client.get(path, headers=bearer(token))).json() == {"data": []}
        r = await client.post(path, headers=bearer(token))
        assert (r.status_code, r.json()) == (200, {"success": True})
        app = fx["apps"][0]
        assert (await client.get(path, headers=bearer(token))).json() == {
            "data": [
                {
                    "whatsapp_business_api_data": {
                        "id": app["id"],
                        "link": f"https://www.facebook.com/games/?app_id={app['id']}",
                        "name": app["name"],
                    }
                }
            ]
        }
        await client.post(path, headers=bearer(token))  # subscribing twice lists the app once
        assert len((await client.get(path, headers=bearer(token))).json()["data"]) == 1
        assert (await client.delete(path, headers=bearer(token))).json() == {"success": True}
        assert (await client.get(path, headers=bearer(token))).json() == {"data": []}

    async def test_management_scope_on_that_waba_is_needed(self, client, state, fx):
        done, _ = await onboard(client, fx)
        path = f"/{done['waba_id']}/subscribed_apps"
        messaging_only = state.create_token(
            "bisu", business_id=done["business_id"], scopes=["whatsapp_business_messaging"]
        )["value"]
        r = await client.post(path, headers=bearer(messaging_only))
        assert r.json()["error"]["code"] == 10
        other_business = fx["tokens"]["system_user"]["value"]  # reaches the developer's WABA only
        error = (await client.post(path, headers=bearer(other_business))).json()["error"]
        assert (error["code"], error["error_subcode"]) == (100, 33)
        assert (await client.post(path)).json()["error"]["code"] == 104
        assert state.subscriptions.get(done["waba_id"], []) == []


class TestUninstall:
    async def test_uninstall_kills_the_business_tokens_with_the_app_removal_error(
        self, client, state, fx
    ):
        done, token = await onboard(client, fx)
        other = await signup(client)  # another client: untouched
        r = await exchange(client, fx, other["code"])
        survivor = r.json()["access_token"]
        r = await client.post(f"/_sandbox/businesses/{done['business_id']}/uninstall")
        assert r.status_code == 200, r.text
        result = r.json()
        assert (result["event"], result["revoked_tokens"]) == ("PARTNER_APP_UNINSTALLED", 1)
        assert result["waba_ids"] == [done["waba_id"]]
        info = await debug(client, fx, token)
        app_id = fx["apps"][0]["id"]
        assert info["is_valid"] is False
        assert info["error"] == {
            "code": 190,
            "message": f"Error validating access token: The user has not authorized application {app_id}.",
            "subcode": 458,
        }
        sent = await send(client, done["phone_number_id"], token)
        error = sent.json()["error"]
        assert (sent.status_code, error["code"], error["error_subcode"]) == (401, 190, 458)
        assert (await debug(client, fx, survivor))["is_valid"] is True
        assert (await send(client, other["phone_number_id"], survivor)).status_code == 200

    async def test_seeded_client_tokens_die_and_the_developer_tokens_live(self, client, state, fx):
        client_business = fx["businesses"][1]["id"]
        r = await client.post(f"/_sandbox/businesses/{client_business}/uninstall")
        assert r.json()["revoked_tokens"] == 2  # bisu and the client admin's 60-day token
        assert (await debug(client, fx, fx["tokens"]["bisu"]["value"]))["is_valid"] is False
        for kind in ("system_user", "user_long"):
            assert (await debug(client, fx, fx["tokens"][kind]["value"]))["is_valid"] is True

    async def test_an_unused_code_dies_with_the_installation(self, client, fx):
        done = await signup(client)
        await client.post(f"/_sandbox/businesses/{done['business_id']}/uninstall")
        error = (await exchange(client, fx, done["code"])).json()["error"]
        assert error["message"] == "Invalid verification code format."

    async def test_refusals_change_nothing(self, client, state, fx):
        own = fx["businesses"][0]["id"]  # owns the app; never installed it
        r = await client.post(f"/_sandbox/businesses/{own}/uninstall")
        assert r.status_code == 400 and "has not installed" in r.json()["error"]["message"]
        assert (await client.post("/_sandbox/businesses/123/uninstall")).status_code == 404
        r = await client.post(f"/_sandbox/businesses/{own}/uninstall", json={"app_id": 7})
        assert r.status_code == 400
        assert not any(t.revoked for t in state.tokens.values())

    async def test_installing_again_does_not_revive_dead_tokens(self, client, state, fx):
        done, token = await onboard(client, fx)
        await client.post(f"/_sandbox/businesses/{done['business_id']}/uninstall")
        r = await client.post(f"/_sandbox/businesses/{done['business_id']}/install")
        assert r.json()["event"] == "PARTNER_APP_INSTALLED"
        assert (await debug(client, fx, token))["is_valid"] is False
        fresh = state.create_code(business_id=done["business_id"])
        assert (await exchange(client, fx, fresh)).status_code == 200


class TestAccountEvents:
    async def event(self, client, waba_id: str, **body: Any) -> httpx.Response:
        return await client.post(f"/_sandbox/wabas/{waba_id}/events", json=body)

    async def test_partner_removed_takes_the_waba_out_of_the_app_tokens(self, client, state, fx):
        done, token = await onboard(client, fx)
        state.subscriptions[done["waba_id"]] = [fx["apps"][0]["id"]]
        r = await self.event(client, done["waba_id"], event="PARTNER_REMOVED")
        assert r.json()["revoked_tokens"] == 0
        info = await debug(client, fx, token)
        assert info["is_valid"] is True and info["granular_scopes"][0]["target_ids"] == []
        assert (await send(client, done["phone_number_id"], token)).json()["error"]["code"] == 200
        assert state.subscriptions[done["waba_id"]] == []

    @pytest.mark.parametrize("config", [SandboxConfig(waba_removal_revokes_tokens=True)])
    async def test_partner_removed_can_revoke_instead(self, client, fx):
        done, token = await onboard(client, fx)
        r = await self.event(client, done["waba_id"], event="PARTNER_REMOVED")
        assert r.json()["revoked_tokens"] == 1
        assert (await debug(client, fx, token))["error"]["subcode"] == 458

    async def test_account_deleted_removes_the_waba_and_its_numbers(self, client, state, fx):
        done, token = await onboard(client, fx)
        await self.event(client, done["waba_id"], event="ACCOUNT_DELETED")
        assert done["waba_id"] not in state.wabas
        assert done["phone_number_id"] not in state.phone_numbers
        r = await client.get(f"/{done['waba_id']}", headers=bearer(token))
        assert r.json()["error"]["error_subcode"] == 33
        assert (await debug(client, fx, token))["is_valid"] is True

    async def test_offboarded_numbers_cannot_send_until_reconnected(self, client, fx):
        done, token = await onboard(client, fx)
        await self.event(client, done["waba_id"], event="ACCOUNT_OFFBOARDED")
        r = await send(client, done["phone_number_id"], token)
        assert (r.status_code, r.json()["error"]["code"]) == (400, 133010)
        assert (await debug(client, fx, token))["is_valid"] is True
        await self.event(client, done["waba_id"], event="ACCOUNT_RECONNECTED")
        assert (await send(client, done["phone_number_id"], token)).status_code == 200

    async def test_a_disabled_waba_answers_368_until_reinstated(self, client, fx):
        done, token = await onboard(client, fx)
        r = await self.event(client, done["waba_id"], event="DISABLED_UPDATE")
        payload = r.json()["deliveries"][0]["payload"]
        assert payload["entry"][0]["changes"][0]["value"]["ban_info"]["waba_ban_state"] == "DISABLE"
        assert (await send(client, done["phone_number_id"], token)).json()["error"]["code"] == 368
        await self.event(client, done["waba_id"], event="DISABLED_UPDATE", ban_state="REINSTATE")
        assert (await send(client, done["phone_number_id"], token)).status_code == 200

    async def test_app_level_events_act_on_the_business(self, client, fx):
        done, _ = await onboard(client, fx)
        r = await self.event(client, done["waba_id"], event="PARTNER_APP_UNINSTALLED")
        assert r.json()["revoked_tokens"] == 1
        r = await self.event(client, done["waba_id"], event="PARTNER_APP_INSTALLED")
        assert r.json()["business_id"] == done["business_id"]

    async def test_bad_events_are_refused(self, client, fx, state):
        waba = fx["wabas"][1]["id"]
        for body in (
            {},
            {"event": "NOPE"},
            {"event": "ACCOUNT_DELETED", "ban_state": "DISABLE"},
            {"event": "DISABLED_UPDATE", "ban_state": "SOMETIMES"},
            {"event": "PARTNER_APP_UNINSTALLED", "ban_state": "DISABLE"},
        ):
            assert (await self.event(client, waba, **body)).status_code == 400, body
        assert (await self.event(client, "42", event="ACCOUNT_DELETED")).status_code == 404
        assert waba in state.wabas and state.webhook_deliveries() == []
        assert not any(t.revoked for t in state.tokens.values())


class TestDeauthorize:
    async def test_deauthorize_revokes_that_person_s_tokens_for_the_app(self, client, state, fx):
        victim = fx["tokens"]["user_long"]
        twin = state.issue("user_short", user_id=victim["user_id"]).value
        r = await client.post("/_sandbox/deauthorize", json={"user_id": victim["user_id"]})
        assert r.status_code == 200 and r.json()["revoked_tokens"] == 2
        assert r.json()["delivery"]["status"] == "undeliverable"
        for value in (victim["value"], twin):
            assert (await debug(client, fx, value))["error"]["subcode"] == 458
        assert (await debug(client, fx, fx["tokens"]["dashboard"]["value"]))["is_valid"] is True
        assert (
            await client.post("/_sandbox/deauthorize", json={"user_id": "1"})
        ).status_code == 404
        assert (await client.post("/_sandbox/deauthorize", json={})).status_code == 400


async def test_fixtures_list_installations_and_subscriptions(client, fx):
    assert fx["installations"] == [
        {"business_id": fx["businesses"][1]["id"], "app_id": fx["apps"][0]["id"]}
    ]
    assert [s["waba_id"] for s in fx["subscriptions"]] == [w["id"] for w in fx["wabas"]]


async def test_openapi_describes_the_new_control_routes(client):
    doc = (await client.get("/_sandbox/openapi.json")).json()
    for path in (
        "/_sandbox/embedded_signup",
        "/_sandbox/businesses/{business_id}/uninstall",
        "/_sandbox/businesses/{business_id}/install",
        "/_sandbox/wabas/{waba_id}/events",
        "/_sandbox/deauthorize",
        "/_sandbox/webhooks",
        "/_sandbox/webhooks/flush",
    ):
        assert path in doc["paths"], path
    events = doc["paths"]["/_sandbox/wabas/{waba_id}/events"]["post"]
    enum = events["requestBody"]["content"]["application/json"]["schema"]["properties"]["event"]
    assert set(enum["enum"]) == {
        "PARTNER_APP_INSTALLED",
        "PARTNER_APP_UNINSTALLED",
        "PARTNER_REMOVED",
        "ACCOUNT_DELETED",
        "ACCOUNT_OFFBOARDED",
        "ACCOUNT_RECONNECTED",
        "DISABLED_UPDATE",
    }


def test_docs_name_every_new_knob_event_and_control_route() -> None:
    """docs/sandbox.md describes what this module adds; a knob or route added later must be too."""
    import dataclasses
    from pathlib import Path

    from permatoken.sandbox import AccountEvent, routes_signup

    docs = (Path(__file__).parents[2] / "docs" / "sandbox.md").read_text()
    words = ("webhook", "deauthorize", "uninstall", "signup", "partner_event", "waba_removal")
    knobs = [
        f.name
        for f in dataclasses.fields(SandboxConfig)
        if any(w in f.name for w in (*words, "offboarded"))
    ]
    assert len(knobs) >= 15
    for name in [*knobs, *AccountEvent]:
        assert f"`{name}" in docs, name
    for route in routes_signup.routes():
        assert f"/_sandbox{route.path}" in docs, route.path
