"""Conformance with ``reference/meta-graph-api.md``, one class per section of the reference.

Rate limits (section 6) and the BSP stand-ins (section 7) live in ``test_conformance_limits.py``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from permatoken.sandbox import SandboxConfig, SandboxState, appsecret_proof

from ._support import WINTER, bearer, make_state

pytestmark = pytest.mark.anyio

SCANNER = re.compile(r"EAA[A-Za-z0-9]{20,}")
EXPIRED = re.compile(
    r"^Error validating access token: Session has expired on "
    r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-[A-Z][a-z]{2}-\d{2} "
    r"\d{2}:\d{2}:\d{2} (PDT|PST)\. The current time is "
    r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-[A-Z][a-z]{2}-\d{2} "
    r"\d{2}:\d{2}:\d{2} (PDT|PST)\.$"
)
DAY = 86_400


def tok(fx: dict[str, Any], kind: str) -> str:
    return str(fx["tokens"][kind]["value"])


def app1(fx: dict[str, Any]) -> dict[str, Any]:
    return dict(fx["apps"][0])


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


async def debug(client: httpx.AsyncClient, fx: dict[str, Any], token: str) -> dict[str, Any]:
    r = await client.get(
        "/v25.0/debug_token", params={"input_token": token}, headers=bearer(tok(fx, "app"))
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def exchange(
    client: httpx.AsyncClient, fx: dict[str, Any], token: str, **extra: str
) -> httpx.Response:
    app = app1(fx)
    params = {
        "grant_type": "fb_exchange_token",
        "client_id": app["id"],
        "client_secret": app["secret"],
        "fb_exchange_token": token,
        **extra,
    }
    return await client.get("/v25.0/oauth/access_token", params=params)


class TestSection1Platform:
    async def test_any_version_prefix_and_unversioned_paths_answer(self, client, fx):
        """`v25.0`, `v19.0`, `v27.0` and no version all reach the same endpoint."""
        phone = fx["phone_numbers"][0]["id"]
        for prefix in ("/v25.0", "/v19.0", "/v27.0", ""):
            r = await client.get(f"{prefix}/{phone}", headers=bearer(tok(fx, "system_user")))
            assert r.status_code == 200, (prefix, r.text)
            assert r.json()["id"] == phone

    async def test_ids_are_json_strings_and_content_type_is_json(self, client, fx):
        """Ids come back as strings; Content-Type is JSON with the configured charset."""
        r = await client.get("/me", headers=bearer(tok(fx, "system_user")))
        assert isinstance(r.json()["id"], str)
        assert r.headers["content-type"] == "application/json; charset=UTF-8"

    async def test_access_token_query_parameter_is_accepted(self, client, fx):
        """The Graph-generic `access_token` parameter works like the Bearer header."""
        r = await client.get("/me", params={"access_token": tok(fx, "system_user")})
        assert r.status_code == 200


class TestSection2TokenTypes:
    def test_one_token_of_each_kind_is_seeded_and_scanner_visible(self, fx):
        """Each kind exists, looks like `EAA…` and is found by the secret-scanner regex."""
        assert set(fx["tokens"]) == {
            "dashboard",
            "user_short",
            "user_long",
            "system_user",
            "system_user_60d",
            "bisu",
            "app",
        }
        for token in fx["tokens"].values():
            assert SCANNER.fullmatch(token["value"]), token["kind"]

    def test_lifetimes_follow_the_reference(self, fx, state):
        """Dashboard < 24 h, short user hours, long user and 60-day ~60 d, others never."""
        now = int(state.clock.now())
        life = {
            k: (t["expires_at"] - now if t["expires_at"] else 0) for k, t in fx["tokens"].items()
        }
        assert 0 < life["dashboard"] < DAY
        assert 0 < life["user_short"] <= 2 * 3600
        assert 59 * DAY < life["user_long"] <= 60 * DAY
        assert 59 * DAY < life["system_user_60d"] <= 60 * DAY
        assert life["system_user"] == life["bisu"] == life["app"] == 0

    async def test_debug_type_per_kind(self, client, fx):
        """USER for user kinds, SYSTEM_USER for system-user and BISU, APP for app tokens."""
        expected = {
            "dashboard": "USER",
            "user_short": "USER",
            "user_long": "USER",
            "system_user": "SYSTEM_USER",
            "system_user_60d": "SYSTEM_USER",
            "bisu": "SYSTEM_USER",
            "app": "APP",
        }
        for kind, kind_type in expected.items():
            assert (await debug(client, fx, tok(fx, kind)))["type"] == kind_type, kind


class TestSection31UserExchange:
    async def test_short_user_token_exchanges_for_a_60_day_token(self, client, fx):
        """A new, different string with `expires_in` 5183944 and token_type bearer."""
        r = await exchange(client, fx, tok(fx, "dashboard"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer" and body["expires_in"] == 5_183_944
        assert body["access_token"] != tok(fx, "dashboard")
        assert (await debug(client, fx, body["access_token"]))["type"] == "USER"

    async def test_expired_user_token_cannot_be_exchanged(self, client, fx, state):
        """ "You can not use an expired token to request a long-lived token": 190/463."""
        state.clock.advance(DAY)
        r = await exchange(client, fx, tok(fx, "dashboard"))
        error = error_of(r)
        assert r.status_code == 400
        assert (error["code"], error["error_subcode"]) == (190, 463)
        assert EXPIRED.match(error["message"])


class TestSection32SystemUserRefresh:
    async def test_refresh_returns_new_token_and_old_stays_valid_until_its_expiry(
        self, client, fx, state
    ):
        """New token +60 d; the old one works until creation + 60 d, then dies alone."""
        old = tok(fx, "system_user_60d")
        old_expiry = fx["tokens"]["system_user_60d"]["expires_at"]
        state.clock.advance(40 * DAY)
        r = await exchange(client, fx, old, set_token_expires_in_60_days="true")
        assert r.status_code == 200, r.text
        new = r.json()["access_token"]
        assert new != old and r.json()["expires_in"] == 5_183_944
        assert (await debug(client, fx, old))["is_valid"] is True
        assert (await debug(client, fx, new))["expires_at"] > old_expiry
        state.clock.freeze(old_expiry + 1)
        old_info, new_info = await debug(client, fx, old), await debug(client, fx, new)
        assert old_info["is_valid"] is False and old_info["error"]["subcode"] == 463
        assert new_info["is_valid"] is True

    async def test_expired_system_user_token_cannot_be_refreshed(self, client, fx, state):
        """Once lapsed, only a re-mint helps: 190/463."""
        state.expire_token(tok(fx, "system_user_60d"))
        r = await exchange(
            client, fx, tok(fx, "system_user_60d"), set_token_expires_in_60_days="true"
        )
        assert (error_of(r)["code"], error_of(r)["error_subcode"]) == (190, 463)

    async def test_non_expiring_system_token_refresh_is_refused_by_default(self, client, fx):
        """Open question in the reference: default is a code-100 refusal."""
        r = await exchange(client, fx, tok(fx, "system_user"), set_token_expires_in_60_days="true")
        assert r.status_code == 400 and error_of(r)["code"] == 100

    @pytest.mark.parametrize("config", [SandboxConfig(exchange_non_expiring_system_user="convert")])
    async def test_non_expiring_system_token_refresh_can_convert(self, client, fx):
        """With the "convert" option it yields a 60-day token."""
        r = await exchange(client, fx, tok(fx, "system_user"), set_token_expires_in_60_days="true")
        assert r.status_code == 200
        assert (await debug(client, fx, r.json()["access_token"]))["expires_at"] > 0


def mint_params(
    state: SandboxState, fx: dict[str, Any], caller: str, **extra: Any
) -> dict[str, Any]:
    app = app1(fx)
    return {
        "business_app": app["id"],
        "access_token": caller,
        "scope": "whatsapp_business_management,whatsapp_business_messaging",
        "appsecret_proof": appsecret_proof(app["secret"], caller),
        **extra,
    }


class TestSection33Mint:
    async def test_mint_needs_appsecret_proof_over_the_caller_token(self, client, fx, state):
        """Missing proof: code 100 with Meta's unprefixed message; wrong proof: code 100."""
        su = fx["system_users"][0]["id"]
        params = mint_params(state, fx, tok(fx, "system_user"))
        del params["appsecret_proof"]
        r = await client.post(f"/v25.0/{su}/access_tokens", data=params)
        assert (
            error_of(r)["message"]
            == "API calls from the server require an appsecret_proof argument"
        )
        params["appsecret_proof"] = "0" * 64
        r = await client.post(f"/v25.0/{su}/access_tokens", data=params)
        assert error_of(r)["message"] == "Invalid appsecret_proof provided in the API argument"

    async def test_mint_returns_only_access_token_and_never_expires_by_default(
        self, client, fx, state
    ):
        su = fx["system_users"][0]["id"]
        r = await client.post(
            f"/v25.0/{su}/access_tokens", data=mint_params(state, fx, tok(fx, "system_user"))
        )
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"access_token"}
        info = await debug(client, fx, r.json()["access_token"])
        assert info["expires_at"] == 0 and info["type"] == "SYSTEM_USER"

    async def test_mint_with_60_days_and_time_stamped_proof(self, client, fx, state):
        """Time-stamped proof `HMAC(secret, token|time)` with appsecret_time is accepted."""
        su, caller, now = (
            fx["system_users"][0]["id"],
            tok(fx, "system_user"),
            int(state.clock.now()),
        )
        params = mint_params(
            state, fx, caller, set_token_expires_in_60_days="true", appsecret_time=str(now)
        )
        params["appsecret_proof"] = appsecret_proof(app1(fx)["secret"], caller, now)
        r = await client.post(f"/{su}/access_tokens", data=params)
        assert r.status_code == 200, r.text
        info = await debug(client, fx, r.json()["access_token"])
        assert info["expires_at"] == now + 5_183_944

    async def test_time_stamped_proof_older_than_five_minutes_is_refused(self, client, fx, state):
        su, caller, then = (
            fx["system_users"][0]["id"],
            tok(fx, "system_user"),
            int(state.clock.now()),
        )
        params = mint_params(state, fx, caller, appsecret_time=str(then))
        params["appsecret_proof"] = appsecret_proof(app1(fx)["secret"], caller, then)
        state.clock.advance(301)
        r = await client.post(f"/{su}/access_tokens", data=params)
        assert error_of(r)["code"] == 100

    async def test_business_that_must_use_expiring_tokens_refuses_non_expiring_mint(
        self, client, fx, state
    ):
        """The client business requires expiring tokens: omitting the flag is an error."""
        business = next(b for b in fx["businesses"] if b["requires_expiring_tokens"])
        admin = next(
            u
            for u in fx["system_users"]
            if u["business_id"] == business["id"] and u["role"] == "ADMIN"
        )
        caller = tok(fx, "system_user_60d")
        r = await client.post(f"/{admin['id']}/access_tokens", data=mint_params(state, fx, caller))
        assert r.status_code == 400 and error_of(r)["code"] == 100
        r = await client.post(
            f"/{admin['id']}/access_tokens",
            data=mint_params(state, fx, caller, set_token_expires_in_60_days="true"),
        )
        assert r.status_code == 200, r.text

    async def test_caller_from_another_business_is_refused(self, client, fx, state):
        other = fx["system_users"][1]["id"]
        r = await client.post(
            f"/{other}/access_tokens", data=mint_params(state, fx, tok(fx, "system_user"))
        )
        assert error_of(r)["code"] == 200

    async def test_install_app_returns_true(self, client, fx):
        su, app = fx["system_users"][0]["id"], app1(fx)
        r = await client.post(
            f"/v25.0/{su}/applications",
            data={"business_app": app["id"]},
            headers=bearer(tok(fx, "system_user")),
        )
        assert r.status_code == 200 and r.json() is True


class TestSection34CodeExchange:
    async def get(self, client, fx, code: str, **extra: str) -> httpx.Response:
        app = app1(fx)
        params = {"client_id": app["id"], "client_secret": app["secret"], "code": code, **extra}
        return await client.get("/v25.0/oauth/access_token", params=params)

    async def test_code_gives_a_never_expiring_business_token_once(self, client, fx, state):
        code = state.create_code()
        r = await self.get(client, fx, code)
        assert r.status_code == 200 and set(r.json()) == {"access_token", "token_type"}
        token = r.json()["access_token"]
        info = await debug(client, fx, token)
        assert info["type"] == "SYSTEM_USER" and info["expires_at"] == 0
        me = await client.get("/me", params={"fields": "client_business_id"}, headers=bearer(token))
        assert set(me.json()) == {"id", "client_business_id"}
        again = await self.get(client, fx, code)
        error = error_of(again)
        assert (again.status_code, error["code"], error["error_subcode"]) == (400, 100, 36009)
        assert again.headers["www-authenticate"].startswith(
            'OAuth "Facebook Platform" "invalid_code"'
        )

    async def test_code_expires_after_30_seconds(self, client, fx, state):
        code = state.create_code()
        state.clock.advance(31)
        assert error_of(await self.get(client, fx, code))["error_subcode"] == 36007

    async def test_garbage_code_redirect_mismatch_bad_secret_bad_app(self, client, fx, state):
        assert error_of(await self.get(client, fx, "nonsense"))["message"] == (
            "Invalid verification code format."
        )
        r = await self.get(client, fx, state.create_code(), redirect_uri="https://x.invalid/")
        assert error_of(r)["error_subcode"] == 36008
        r = await client.get(
            "/oauth/access_token",
            params={"client_id": app1(fx)["id"], "client_secret": "wrong", "code": "x"},
        )
        assert (error_of(r)["code"], error_of(r)["message"]) == (
            1,
            "Error validating client secret.",
        )
        r = await client.get(
            "/oauth/access_token",
            params={"client_id": "999", "client_secret": "wrong", "code": "x"},
        )
        assert error_of(r)["code"] == 101

    async def test_client_credentials_gives_an_app_token(self, client, fx):
        app = app1(fx)
        r = await client.get(
            "/oauth/access_token",
            params={
                "grant_type": "client_credentials",
                "client_id": app["id"],
                "client_secret": app["secret"],
            },
        )
        assert r.json()["token_type"] == "bearer"
        assert (await debug(client, fx, r.json()["access_token"]))["type"] == "APP"


class TestSection35Revoke:
    async def test_revoke_is_immediate(self, client, fx):
        app, victim = app1(fx), tok(fx, "system_user_60d")
        r = await client.get(
            "/v25.0/oauth/revoke",
            params={
                "client_id": app["id"],
                "client_secret": app["secret"],
                "revoke_token": victim,
                "access_token": tok(fx, "system_user"),
            },
        )
        assert r.status_code == 200 and r.json() == {"success": True}
        r = await client.get("/me", headers=bearer(victim))
        error = error_of(r)
        assert (r.status_code, error["code"], error["error_subcode"]) == (400, 190, 466)

    @pytest.mark.parametrize(
        "config", [SandboxConfig(revoked_subcode=None, revoke_success_as_string=True)]
    )
    async def test_revoked_subcode_and_success_typing_are_configurable(self, client, fx):
        app, victim = app1(fx), tok(fx, "user_long")
        r = await client.get(
            "/oauth/revoke",
            params={
                "client_id": app["id"],
                "client_secret": app["secret"],
                "revoke_token": victim,
                "access_token": victim,
            },
        )
        assert r.json() == {"success": "true"}
        error = error_of(await client.get("/me", headers=bearer(victim)))
        assert error["code"] == 190 and "error_subcode" not in error


class TestSection36DebugToken:
    async def test_valid_system_user_token_shape(self, client, fx):
        info = await debug(client, fx, tok(fx, "system_user"))
        assert {
            "app_id",
            "type",
            "application",
            "data_access_expires_at",
            "expires_at",
            "is_valid",
            "issued_at",
            "scopes",
            "granular_scopes",
            "user_id",
        } <= set(info)
        assert info["expires_at"] == 0 and info["data_access_expires_at"] == 0
        assert all("target_ids" not in g for g in info["granular_scopes"])

    async def test_bisu_lists_waba_target_ids_as_strings(self, client, fx):
        info = await debug(client, fx, tok(fx, "bisu"))
        targets = [g.get("target_ids") for g in info["granular_scopes"]]
        assert all(t and all(isinstance(i, str) for i in t) for t in targets)

    async def test_foreign_app_token_is_refused(self, client, fx, state):
        foreign = state.create_token("system_user", app_id=fx["apps"][1]["id"])["value"]
        r = await client.get(
            "/debug_token", params={"input_token": foreign}, headers=bearer(tok(fx, "app"))
        )
        assert r.status_code == 400
        assert error_of(r) | {"fbtrace_id": None} == {
            "message": "(#100) The App_id in the input_token did not match the Viewing App",
            "type": "OAuthException",
            "code": 100,
            "fbtrace_id": None,
        }

    async def test_app_literal_and_same_app_user_token_can_inspect(self, client, fx):
        app = app1(fx)
        for caller in (f"{app['id']}|{app['secret']}", tok(fx, "user_long")):
            r = await client.get(
                "/debug_token", params={"input_token": tok(fx, "bisu"), "access_token": caller}
            )
            assert r.status_code == 200

    async def test_invalid_token_answers_200_with_error_object(self, client, fx, state):
        state.revoke_token(tok(fx, "user_long"), subcode=460)
        info = await debug(client, fx, tok(fx, "user_long"))
        assert info["is_valid"] is False
        assert set(info["error"]) == {"code", "message", "subcode"}
        assert info["error"]["subcode"] == 460

    async def test_unparseable_input_token_answers_200_with_data_error(self, client, fx):
        """Reference 10: Meta answers a token it cannot parse with 200 and data.error."""
        r = await client.get(
            "/debug_token", params={"input_token": "garbage"}, headers=bearer(tok(fx, "app"))
        )
        assert r.status_code == 200
        data = r.json()["data"]
        assert data["is_valid"] is False and "app_id" not in data and "type" not in data
        assert data["error"] == {
            "code": 190,
            "message": "Invalid OAuth access token - Cannot parse access token",
        }

    async def test_unparseable_input_token_top_level_shape_on_request(self, client, fx, state):
        state.config.debug_token_unparseable = "top_level"
        r = await client.get(
            "/debug_token", params={"input_token": "garbage"}, headers=bearer(tok(fx, "app"))
        )
        assert r.status_code == 400 and error_of(r)["code"] == 190


class TestSection37Messages:
    BODY = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"preview_url": False, "body": "Hi"},
    }

    async def test_text_send_shape_and_log(self, client, fx, state):
        phone = fx["phone_numbers"][0]["id"]
        r = await client.post(
            f"/v25.0/{phone}/messages", json=self.BODY, headers=bearer(tok(fx, "system_user"))
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["messaging_product"] == "whatsapp"
        assert body["contacts"] == [{"input": "+16505551234", "wa_id": "16505551234"}]
        assert body["messages"][0]["id"].startswith("wamid.")
        [logged] = state.messages()
        assert logged["id"] == body["messages"][0]["id"] and logged["content"]["body"] == "Hi"

    async def test_template_send_carries_message_status(self, client, fx):
        phone = fx["phone_numbers"][0]["id"]
        body = {
            "messaging_product": "whatsapp",
            "to": "16505551234",
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        }
        r = await client.post(
            f"/{phone}/messages", json=body, headers=bearer(tok(fx, "system_user"))
        )
        assert r.json()["messages"][0]["message_status"] == "accepted"

    async def test_bad_token_is_401_with_cannot_parse(self, client, fx):
        phone = fx["phone_numbers"][0]["id"]
        r = await client.post(f"/{phone}/messages", json=self.BODY, headers=bearer("EAAnope"))
        assert r.status_code == 401
        assert error_of(r)["message"] == "Invalid OAuth access token - Cannot parse access token"
        assert r.headers["www-authenticate"].startswith('OAuth "Facebook Platform" "invalid_token"')

    async def test_phone_of_another_waba_is_refused_with_200(self, client, fx):
        other = fx["phone_numbers"][1]["id"]
        r = await client.post(
            f"/{other}/messages", json=self.BODY, headers=bearer(tok(fx, "system_user"))
        )
        assert error_of(r)["code"] == 200


class TestSection38HarmlessCalls:
    async def test_phone_number_waba_and_phone_numbers_edge(self, client, fx):
        phone, waba = fx["phone_numbers"][0], fx["wabas"][0]
        headers = bearer(tok(fx, "system_user"))
        r = await client.get(f"/v25.0/{phone['id']}", headers=headers)
        assert r.json()["display_phone_number"] == phone["display_phone_number"]
        assert r.json()["code_verification_status"] == "VERIFIED"
        r = await client.get(
            f"/v25.0/{phone['id']}", params={"fields": "quality_rating"}, headers=headers
        )
        assert r.json() == {"quality_rating": "GREEN", "id": phone["id"]}
        r = await client.get(f"/v25.0/{waba['id']}", headers=headers)
        assert r.json()["id"] == waba["id"] and "x-business-use-case-usage" in r.headers
        r = await client.get(f"/v25.0/{waba['id']}/phone_numbers", headers=headers)
        assert [p["id"] for p in r.json()["data"]] == [phone["id"]]


class TestSection4AppSecretProof:
    async def test_app_requiring_app_secret_needs_proof_everywhere(self, client, fx, state):
        foreign = fx["apps"][1]
        token = state.create_token("system_user", app_id=foreign["id"])["value"]
        r = await client.get("/me", headers=bearer(token))
        assert (
            error_of(r)["message"]
            == "API calls from the server require an appsecret_proof argument"
        )
        r = await client.get(
            "/me",
            params={"appsecret_proof": appsecret_proof(foreign["secret"], token)},
            headers=bearer(token),
        )
        assert r.status_code == 200


class TestSection5Errors:
    async def test_envelope_headers_and_expired_message_in_pdt(self, client, fx, state):
        token = tok(fx, "dashboard")
        state.clock.advance(DAY)
        r = await client.get("/v25.0/me", headers=bearer(token))
        error = error_of(r)
        assert r.status_code == 400
        assert {"message", "type", "code", "error_subcode", "fbtrace_id"} <= set(error)
        assert EXPIRED.match(error["message"]) and "PDT" in error["message"]
        assert r.headers["www-authenticate"] == (
            f'OAuth "Facebook Platform" "invalid_token" "{error["message"]}"'
        )
        assert "x-app-usage" not in r.headers or r.headers["x-app-usage"]

    async def test_expired_message_uses_pst_in_winter_with_exact_text(self, client):
        state = make_state(at=WINTER)
        token = state.create_token("user_short", expires_in=3600)["value"]
        state.clock.advance(3600 + 7)
        from permatoken.sandbox import create_app

        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as c:
            r = await c.get("/me", headers=bearer(token))
        assert error_of(r)["message"] == (
            "Error validating access token: Session has expired on Thursday, 15-Jan-26 "
            "11:00:00 PST. The current time is Thursday, 15-Jan-26 11:00:07 PST."
        )

    async def test_missing_token_on_me_is_2500_invalid_request(self, client):
        r = await client.get("/me")
        assert error_of(r)["code"] == 2500
        assert '"invalid_request"' in r.headers["www-authenticate"]
