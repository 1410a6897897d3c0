"""Bad requests get Meta-shaped 4xx errors, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._support import bearer

pytestmark = pytest.mark.anyio


def assert_meta_error(r: httpx.Response, code: int | None = None) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    error = r.json()["error"]
    assert isinstance(error["code"], int) and isinstance(error["message"], str)
    assert error["type"] in ("OAuthException", "GraphMethodException")
    assert "www-authenticate" in r.headers
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


async def test_missing_parameters(client, fx):
    app = fx["apps"][0]
    assert_meta_error(await client.get("/oauth/access_token"), 100)
    assert_meta_error(
        await client.get(
            "/oauth/access_token",
            params={"grant_type": "fb_exchange_token", "client_id": app["id"]},
        ),
        100,
    )
    assert_meta_error(
        await client.get(
            "/oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": app["id"],
                "client_secret": app["secret"],
            },
        ),
        100,
    )
    assert_meta_error(
        await client.get("/debug_token", headers=bearer(fx["tokens"]["app"]["value"])), 100
    )
    assert_meta_error(
        await client.get(
            "/oauth/revoke",
            params={
                "client_id": app["id"],
                "client_secret": app["secret"],
                "access_token": fx["tokens"]["system_user"]["value"],
            },
        ),
        100,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"to": "1", "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "to": "1", "type": "text"},
        {"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": ""}},
        {"messaging_product": "whatsapp", "to": "1", "type": "text", "text": "hello"},
        {"messaging_product": "whatsapp", "to": ["1"], "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "to": "1", "type": 5, "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "to": "1", "type": "hologram", "hologram": {}},
        {"messaging_product": "whatsapp", "to": "1", "type": "template", "template": {"name": "x"}},
        {
            "messaging_product": "whatsapp",
            "to": "1",
            "type": "text",
            "text": {"body": "x", "preview_url": "yes"},
        },
        {"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "x" * 5000}},
    ],
)
async def test_invalid_message_bodies(client, fx, body):
    phone = fx["phone_numbers"][0]["id"]
    r = await client.post(
        f"/{phone}/messages", json=body, headers=bearer(fx["tokens"]["system_user"]["value"])
    )
    error = assert_meta_error(r, 100)
    assert error["error_data"]["messaging_product"] == "whatsapp"


async def test_wrong_types_in_query_parameters(client, fx):
    app = fx["apps"][0]
    r = await client.get(
        "/oauth/access_token",
        params={
            "grant_type": "fb_exchange_token",
            "client_id": app["id"],
            "client_secret": app["secret"],
            "fb_exchange_token": fx["tokens"]["system_user_60d"]["value"],
            "set_token_expires_in_60_days": "maybe",
        },
    )
    assert "must be a boolean" in assert_meta_error(r, 100)["message"]
    su = fx["system_users"][0]["id"]
    r = await client.post(
        f"/{su}/access_tokens",
        data={
            "access_token": fx["tokens"]["system_user"]["value"],
            "appsecret_proof": "00",
            "appsecret_time": "noon",
        },
    )
    assert_meta_error(r, 100)
    r = await client.post(
        f"/{su}/access_tokens",
        json={"business_app": {"id": 1}},
        headers=bearer(fx["tokens"]["system_user"]["value"]),
    )
    assert_meta_error(r, 100)


async def test_unknown_ids_and_paths(client, fx):
    headers = bearer(fx["tokens"]["system_user"]["value"])
    error = assert_meta_error(await client.get("/v25.0/123456789", headers=headers), 100)
    assert error["error_subcode"] == 33 and error["type"] == "GraphMethodException"
    assert_meta_error(await client.post("/v25.0/123456789/messages", json={}, headers=headers), 100)
    assert_meta_error(await client.get("/v25.0/123/phone_numbers", headers=headers), 100)
    assert_meta_error(await client.post("/v25.0/123/access_tokens", headers=headers), 100)
    phone = fx["phone_numbers"][0]["id"]
    assert_meta_error(await client.get(f"/v25.0/{phone}/messages", headers=headers), 100)
    assert_meta_error(await client.get(f"/v25.0/{phone}/nothing/here", headers=headers), 2500)
    assert_meta_error(await client.delete(f"/v25.0/{phone}", headers=headers), 100)
    assert_meta_error(await client.get("/oauth/nowhere", headers=headers), 2500)


async def test_oversized_body_is_413_meta_shaped(client, fx):
    phone = fx["phone_numbers"][0]["id"]
    r = await client.post(
        f"/{phone}/messages",
        content=b"x" * (64 * 1024 + 1),
        headers=bearer(fx["tokens"]["system_user"]["value"]),
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == 100


async def test_oversized_streamed_body_without_length_is_413(client, fx):
    async def chunks():
        for _ in range(80):
            yield b"y" * 1024

    phone = fx["phone_numbers"][0]["id"]
    r = await client.post(
        f"/{phone}/messages", content=chunks(), headers=bearer(fx["tokens"]["system_user"]["value"])
    )
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe garbage", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"hello", "text/plain"),
        (b"", "application/json"),
    ],
)
async def test_non_json_bodies_to_messages(client, fx, content, content_type):
    phone = fx["phone_numbers"][0]["id"]
    headers = {**bearer(fx["tokens"]["system_user"]["value"]), "content-type": content_type}
    r = await client.post(f"/{phone}/messages", content=content, headers=headers)
    assert_meta_error(r, 100)


async def test_garbage_headers_and_methods_never_500(client, fx):
    phone = fx["phone_numbers"][0]["id"]
    for headers in (
        {"Authorization": "Bearer"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "EAA"},
    ):
        r = await client.get(f"/{phone}", headers=headers)
        assert 400 <= r.status_code < 500
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        r = await client.request(
            method, "/me", headers=bearer(fx["tokens"]["system_user"]["value"])
        )
        assert 400 <= r.status_code < 500, method
    r = await client.post("/v1/users/login", headers={"Authorization": "Basic ???"})
    assert r.status_code == 401
    r = await client.post("/oauth2/token", content=b"\x00\x01", headers={"content-type": "text/x"})
    assert r.status_code == 401
