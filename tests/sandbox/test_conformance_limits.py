"""Conformance, continued: rate-limit headers and throttling (reference 6 and 3.7), the BSP and
OAuth2 stand-ins (section 7) and the clock rules of the behaviour model (section 8)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from permatoken.sandbox import SandboxConfig

from ._support import TEXT, bearer

pytestmark = pytest.mark.anyio
HOUR = 3600


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


class TestSection6Usage:
    @pytest.mark.parametrize("config", [SandboxConfig(app_calls_per_hour=4)])
    async def test_app_usage_counts_real_calls_then_throttles_with_code_4(self, client, fx, state):
        """call_count rises 25 % per call; the 5th call is code 4, transient; an hour later ok."""
        headers = bearer(fx["tokens"]["system_user"]["value"])
        seen = []
        for _ in range(4):
            r = await client.get("/me", headers=headers)
            assert r.status_code == 200
            seen.append(json.loads(r.headers["x-app-usage"])["call_count"])
        assert seen == [25, 50, 75, 100]
        r = await client.get("/me", headers=headers)
        error = r.json()["error"]
        assert (r.status_code, error["code"], error["is_transient"]) == (400, 4, True)
        assert error["message"] == "(#4) Application request limit reached"
        assert json.loads(r.headers["x-app-usage"])["call_count"] == 125
        state.clock.advance(HOUR + 1)
        assert (await client.get("/me", headers=headers)).status_code == 200

    async def test_app_usage_header_is_present_at_zero(self, client, fx):
        r = await client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"]))
        assert json.loads(r.headers["x-app-usage"]) == {
            "call_count": 0,
            "total_cputime": 0,
            "total_time": 0,
        }

    @pytest.mark.parametrize("config", [SandboxConfig(active_waba_calls_per_hour=2)])
    async def test_waba_budget_gives_buc_header_and_80008(self, client, fx):
        waba = fx["wabas"][0]["id"]
        headers = bearer(fx["tokens"]["system_user"]["value"])
        r = await client.get(f"/{waba}", headers=headers)
        usage = json.loads(r.headers["x-business-use-case-usage"])
        assert list(usage) == [waba]
        assert usage[waba][0]["type"] == "whatsapp" and usage[waba][0]["call_count"] == 50
        await client.get(f"/{waba}/phone_numbers", headers=headers)
        r = await client.get(f"/{waba}", headers=headers)
        assert r.json()["error"]["code"] == 80008
        assert r.json()["error"]["message"].startswith("(#80008) There have been too many calls")
        usage = json.loads(r.headers["x-business-use-case-usage"])
        assert usage[waba][0]["estimated_time_to_regain_access"] > 0

    @pytest.mark.parametrize(
        "config",
        [
            SandboxConfig(
                active_waba_calls_per_hour=1, waba_throttle_code=80007, throttle_http_status=429
            )
        ],
    )
    async def test_waba_throttle_code_and_status_are_configurable(self, client, fx):
        waba = fx["wabas"][0]["id"]
        headers = bearer(fx["tokens"]["system_user"]["value"])
        await client.get(f"/{waba}", headers=headers)
        r = await client.get(f"/{waba}", headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (429, 80007)

    @pytest.mark.parametrize("config", [SandboxConfig(messages_per_second=3)])
    async def test_phone_throughput_limit_is_130429(self, client, fx, state):
        phone = fx["phone_numbers"][0]["id"]
        headers = bearer(fx["tokens"]["system_user"]["value"])
        for i in range(3):
            body = {**TEXT, "to": f"1650555000{i}"}
            assert (
                await client.post(f"/{phone}/messages", json=body, headers=headers)
            ).status_code == 200
        r = await client.post(
            f"/{phone}/messages", json={**TEXT, "to": "16505559999"}, headers=headers
        )
        assert r.json()["error"]["code"] == 130429
        assert (
            r.json()["error"]["error_data"]["details"]
            == "Cloud API message throughput has been reached."
        )
        state.clock.advance(1.5)
        assert (
            await client.post(f"/{phone}/messages", json=TEXT, headers=headers)
        ).status_code == 200

    @pytest.mark.parametrize("config", [SandboxConfig(pair_burst=2, pair_interval_seconds=6)])
    async def test_pair_rate_limit_is_131056_per_recipient(self, client, fx, state):
        phone = fx["phone_numbers"][0]["id"]
        headers = bearer(fx["tokens"]["system_user"]["value"])
        for _ in range(2):
            assert (
                await client.post(f"/{phone}/messages", json=TEXT, headers=headers)
            ).status_code == 200
        r = await client.post(f"/{phone}/messages", json=TEXT, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, 131056)
        other = {**TEXT, "to": "447700900123"}
        assert (
            await client.post(f"/{phone}/messages", json=other, headers=headers)
        ).status_code == 200
        state.clock.advance(6)
        assert (
            await client.post(f"/{phone}/messages", json=TEXT, headers=headers)
        ).status_code == 200


class TestSection7Providers:
    async def test_login_returns_users_token_and_new_login_invalidates_previous(self, client, fx):
        login = fx["providers"]["login"]
        creds = basic(login["username"], login["password"])
        first = await client.post(login["url_path"], headers=creds)
        assert first.status_code == 200
        [user] = first.json()["users"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\+00:00", user["expires_after"])
        assert (await client.get("/v1/health", headers=bearer(user["token"]))).status_code == 200
        second = (await client.post(login["url_path"], headers=creds)).json()["users"][0]
        assert (await client.get("/v1/health", headers=bearer(user["token"]))).status_code == 401
        assert (await client.get("/v1/health", headers=bearer(second["token"]))).status_code == 200

    async def test_login_token_expires_after_seven_days_and_bad_password_is_401(
        self, client, fx, state
    ):
        login = fx["providers"]["login"]
        token = (
            await client.post(
                login["url_path"], headers=basic(login["username"], login["password"])
            )
        ).json()["users"][0]["token"]
        state.clock.advance(7 * 86_400)
        assert (await client.get("/v1/health", headers=bearer(token))).status_code == 401
        r = await client.post(login["url_path"], headers=basic(login["username"], "wrong"))
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == 1005

    async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(self, client, fx):
        oauth = fx["providers"]["oauth2"]
        auth = {"client_id": oauth["client_id"], "client_secret": oauth["client_secret"]}
        r1 = await client.post(
            oauth["token_url_path"],
            data={**auth, "grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]},
        )
        assert r1.status_code == 200, r1.text
        first = r1.json()
        assert first["refresh_token"] != oauth["refresh_token"]
        r2 = await client.post(
            oauth["token_url_path"],
            data={**auth, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        second = r2.json()
        assert (
            await client.get("/v1/health", headers=bearer(second["access_token"]))
        ).status_code == 200
        replay = await client.post(
            oauth["token_url_path"],
            data={**auth, "grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]},
        )
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        # The whole family is gone: the newest refresh token and access token too.
        latest = await client.post(
            oauth["token_url_path"],
            data={**auth, "grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        )
        assert latest.json()["error"] == "invalid_grant"
        assert (
            await client.get("/v1/health", headers=bearer(second["access_token"]))
        ).status_code == 401
        intro = await client.post(
            "/oauth2/introspect", data={**auth, "token": second["access_token"]}
        )
        assert intro.json() == {"active": False}

    async def test_bad_client_is_401_and_client_credentials_has_no_refresh_token(self, client, fx):
        oauth = fx["providers"]["oauth2"]
        r = await client.post(
            oauth["token_url_path"],
            data={"grant_type": "client_credentials"},
            headers=basic(oauth["client_id"], "wrong"),
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        assert r.headers["www-authenticate"].startswith("Basic")
        r = await client.post(
            oauth["token_url_path"],
            data={"grant_type": "client_credentials"},
            headers=basic(oauth["client_id"], oauth["client_secret"]),
        )
        assert r.status_code == 200 and "refresh_token" not in r.json()


class TestSection8Clock:
    async def test_tokens_die_exactly_at_expiry_on_the_shared_clock(self, client, fx, state):
        token = fx["tokens"]["user_long"]
        state.clock.freeze(token["expires_at"] - 1)
        assert (await client.get("/me", headers=bearer(token["value"]))).status_code == 200
        r = await client.post("/_sandbox/clock", json={"advance_seconds": 1})
        assert r.json()["now"] == token["expires_at"] and r.json()["frozen"] is True
        r = await client.get("/me", headers=bearer(token["value"]))
        assert r.json()["error"]["error_subcode"] == 463
