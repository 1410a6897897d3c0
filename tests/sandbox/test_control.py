"""The ``/_sandbox/`` control API and fault injection."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from permatoken.sandbox import ENDPOINTS, TOKEN_KINDS

from ._support import MSG, TEXT, bearer

pytestmark = pytest.mark.anyio


async def send(client: httpx.AsyncClient, fx: dict, token: str | None = None) -> httpx.Response:
    phone = fx["phone_numbers"][0]["id"]
    value = token or fx["tokens"]["system_user"]["value"]
    return await client.post(f"/v25.0/{phone}/messages", json=TEXT, headers=bearer(value))


async def test_openapi_document_describes_the_control_api(client):
    doc = (await client.get("/_sandbox/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/_sandbox/clock",
        "/_sandbox/tokens",
        "/_sandbox/tokens/revoke",
        "/_sandbox/tokens/expire",
        "/_sandbox/faults",
        "/_sandbox/calls",
        "/_sandbox/messages",
    ):
        assert path in doc["paths"], path


async def test_clock_freeze_advance_unfreeze_and_offset(client, state):
    r = await client.post("/_sandbox/clock", json={"freeze_at": 1_000_000})
    assert r.json() == {"now": 1_000_000, "frozen": True, "offset_seconds": 0.0}
    r = await client.post("/_sandbox/clock", json={"advance_seconds": 60})
    assert r.json()["now"] == 1_000_060
    r = await client.post("/_sandbox/clock", json={"unfreeze": True})
    assert r.json()["frozen"] is False and abs(r.json()["now"] - 1_000_060) < 5
    r = await client.post("/_sandbox/clock", json={"offset_seconds": 0})
    assert r.json()["frozen"] is False and state.clock.offset == 0


@pytest.mark.parametrize("kind", TOKEN_KINDS)
async def test_create_token_of_every_kind_then_revoke_and_expire(client, kind):
    made = (await client.post("/_sandbox/tokens", json={"kind": kind})).json()
    assert made["kind"] == kind and made["value"].startswith("EAA")
    r = await client.post("/_sandbox/tokens/revoke", json={"value": made["value"], "subcode": 458})
    assert r.json()["revoked"] is True
    r = await client.get("/me", headers=bearer(made["value"]))
    assert (r.json()["error"]["code"], r.json()["error"]["error_subcode"]) == (190, 458)
    other = (await client.post("/_sandbox/tokens", json={"kind": kind})).json()
    await client.post("/_sandbox/tokens/expire", json={"value": other["value"]})
    r = await client.get("/me", headers=bearer(other["value"]))
    assert r.json()["error"]["error_subcode"] == 463


async def test_create_objects_and_use_them(client):
    business = (await client.post("/_sandbox/objects/businesses", json={"name": "B"})).json()
    waba = (
        await client.post("/_sandbox/objects/wabas", json={"business_id": business["id"]})
    ).json()
    phone = (
        await client.post("/_sandbox/objects/phone_numbers", json={"waba_id": waba["id"]})
    ).json()
    await client.post("/_sandbox/objects/system_users", json={"business_id": business["id"]})
    token = (
        await client.post(
            "/_sandbox/tokens", json={"kind": "system_user", "business_id": business["id"]}
        )
    ).json()
    assert token["waba_ids"] == [waba["id"]]
    r = await client.get(f"/{phone['id']}", headers=bearer(token["value"]))
    assert r.status_code == 200
    r = await client.post("/_sandbox/objects/nonsense", json={})
    assert r.status_code == 404


async def test_error_fault_for_next_n_calls_then_normal(client, fx):
    r = await client.post("/_sandbox/faults", json={"endpoint": MSG, "code": 131000, "count": 2})
    assert r.json()["id"] >= 1
    assert [(await send(client, fx)).json()["error"]["code"] for _ in range(2)] == [131000] * 2
    assert (await send(client, fx)).status_code == 200
    assert (await client.get("/_sandbox/faults")).json()["data"] == []


async def test_status_only_fault_and_raw_body_fault(client, fx, state):
    state.inject_fault(MSG, http_status=503)
    r = await send(client, fx)
    assert r.status_code == 503 and r.json()["error"]["code"] == 2
    assert '"unknown_error"' in r.headers["www-authenticate"]
    state.inject_fault("*", http_status=502, body="<html>Bad Gateway</html>")
    r = await client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"]))
    assert r.status_code == 502 and r.text.startswith("<html>")


async def test_respond_fault_answers_any_status_with_any_json_and_headers(client, fx):
    """A 2xx answer with an error inside, a chosen header, for the next two calls only."""
    spec = {
        "endpoint": "GET /oauth/access_token",
        "kind": "respond",
        "json": {"error": {"code": 2, "message": "odd"}},
        "headers": {"X-Odd": "yes"},
        "count": 2,
    }
    assert (await client.post("/_sandbox/faults", json=spec)).status_code == 200
    for _ in range(2):
        r = await client.get("/oauth/access_token", params={"grant_type": "client_credentials"})
        assert r.status_code == 200 and r.json() == spec["json"]
        assert r.headers["x-odd"] == "yes" and r.headers["content-type"] == "application/json"
    r = await client.get("/oauth/access_token", params={"grant_type": "client_credentials"})
    assert r.json()["error"]["code"] == 100  # the fault is used up: the real answer again
    calls = (await client.get("/_sandbox/calls")).json()["data"]
    assert [c["status"] for c in calls] == [200, 200, 400]


async def test_respond_fault_builds_large_raw_bodies_from_a_small_request(client, fx):
    """prefix + body x repeat + suffix: a 100 KB token in a JSON answer, from a 200-byte spec."""
    spec = {
        "endpoint": "*",
        "kind": "respond",
        "http_status": 201,
        "body": "A",
        "repeat": 100_000,
        "body_prefix": '{"access_token": "EAA',
        "body_suffix": '", "access_token": "dup"}',
        "content_type": "text/html",
    }
    assert (await client.post("/_sandbox/faults", json=spec)).status_code == 200
    r = await client.get("/me")
    assert r.status_code == 201 and r.headers["content-type"] == "text/html"
    assert len(r.content) == 100_000 + len(spec["body_prefix"]) + len(spec["body_suffix"])
    assert r.text.startswith('{"access_token": "EAAAAA') and r.text.endswith('"dup"}')


async def test_fractional_fault_hits_some_calls_deterministically(client, fx, state):
    state.inject_fault("GET /me", code=2, fraction=0.5)
    token = fx["tokens"]["system_user"]["value"]
    codes = [(await client.get("/me", headers=bearer(token))).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35 and codes.count(200) > 5


async def test_latency_fault_delays_without_failing(client, fx, state):
    state.inject_fault("GET /me", kind="latency", latency_seconds=0.05)
    token = fx["tokens"]["system_user"]["value"]
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    assert state.calls("GET /me")[-1]["status"] == 200


async def test_dropped_connection_is_a_transport_error_in_process(client, fx, state):
    state.inject_fault(MSG, kind="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await send(client, fx)
    assert (await send(client, fx)).status_code == 200
    assert state.messages()[-1]["to"] == "16505551234" and len(state.messages()) == 1


async def test_timeout_fault_hangs_past_the_client_deadline(client, fx, state):
    state.inject_fault(MSG, kind="timeout", timeout_seconds=5)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            await send(client, fx)


async def test_calls_log_has_fingerprints_never_raw_tokens(client, fx):
    token = fx["tokens"]["system_user"]["value"]
    await send(client, fx)
    await client.get("/me", params={"access_token": token})
    r = await client.get("/_sandbox/calls", params={"endpoint": MSG})
    [call] = r.json()["data"]
    assert call["endpoint"] == MSG and call["status"] == 200
    assert call["token_fingerprint"].startswith("sha256:")
    everything = (await client.get("/_sandbox/calls")).text
    assert token not in everything and "EAA" not in everything
    assert len(json.loads(everything)["data"]) == 2


async def test_messages_log_and_clearing(client, fx):
    await send(client, fx)
    data = (await client.get("/_sandbox/messages")).json()["data"]
    assert data[0]["id"].startswith("wamid.") and data[0]["type"] == "text"
    await client.delete("/_sandbox/messages")
    assert (await client.get("/_sandbox/messages")).json()["data"] == []


async def test_config_patch_changes_behaviour_and_rejects_bad_fields(client, fx):
    r = await client.patch("/_sandbox/config", json={"revoked_subcode": 467})
    assert r.json()["revoked_subcode"] == 467
    r = await client.patch("/_sandbox/config", json={"messages_per_second": "fast"})
    assert r.status_code == 400
    r = await client.patch("/_sandbox/config", json={"no_such_field": 1})
    assert r.status_code == 400


async def test_reset_reseeds_a_fresh_world(client, fx):
    new = (await client.post("/_sandbox/reset", json={})).json()
    assert new["tokens"]["system_user"]["value"] != fx["tokens"]["system_user"]["value"]
    r = await client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"]))
    assert r.json()["error"]["code"] == 190


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": MSG, "kind": "explode"},
        {"endpoint": MSG, "kind": "error"},
        {"endpoint": MSG, "code": "x"},
        {"endpoint": MSG, "code": 2, "count": 0},
        {"endpoint": MSG, "code": 2, "fraction": 2},
        {"endpoint": MSG, "code": 2, "surprise": True},
        {"endpoint": MSG, "code": 2, "json": {}},
        {"endpoint": MSG, "http_status": 200},
        {"endpoint": MSG, "kind": "respond", "http_status": 99},
        {"endpoint": MSG, "kind": "respond", "json": {}, "body": "x"},
        {"endpoint": MSG, "kind": "respond", "headers": {"a": 1}},
        {"endpoint": MSG, "kind": "respond", "repeat": 0},
        {"endpoint": MSG, "kind": "respond", "body": "x", "repeat": 10**9},
    ],
)
async def test_bad_fault_specs_are_400(client, body):
    assert (await client.post("/_sandbox/faults", json=body)).status_code == 400


async def test_control_api_bad_input_is_never_500(client):
    assert (await client.post("/_sandbox/tokens", json={"kind": "nope"})).status_code == 400
    assert (await client.post("/_sandbox/tokens", content=b"{not json")).status_code == 400
    assert (await client.post("/_sandbox/tokens", json=[1])).status_code == 400
    assert (await client.post("/_sandbox/tokens/revoke", json={"value": "x"})).status_code == 404
    assert (await client.post("/_sandbox/tokens/revoke", json={})).status_code == 400
    assert (await client.post("/_sandbox/clock", json={"advance_seconds": "1"})).status_code == 400
    r = await client.post("/_sandbox/tokens", json={"kind": "system_user", "app_id": "0"})
    assert r.status_code == 404


def test_every_endpoint_name_is_faultable():
    assert "POST /{phone-number-id}/messages" in ENDPOINTS and "GET /debug_token" in ENDPOINTS
