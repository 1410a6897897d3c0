"""The key: in every place Graph clients put a token, once, checked as the broker checks it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from server.conftest import TEST_CONFIG

from .conftest import NAME, Proxied

TEXT = {"messaging_product": "whatsapp", "to": "16505551234", "type": "text"}


def _places(key: str) -> dict[str, dict[str, Any]]:
    """httpx request arguments putting ``key`` in each place a Graph client may."""
    text = json.dumps({"body": "hi"})
    return {
        "bearer": {
            "headers": {"Authorization": f"Bearer {key}"},
            "json": {**TEXT, "text": {"body": "hi"}},
        },
        "oauth": {
            "headers": {"Authorization": f"OAuth {key}"},
            "json": {**TEXT, "text": {"body": "hi"}},
        },
        "query": {"params": {"access_token": key}, "json": {**TEXT, "text": {"body": "hi"}}},
        "form": {"data": {**TEXT, "text": text, "access_token": key}},
        "multipart": {
            "data": {**TEXT, "text": text, "access_token": key},
            "files": {"x": ("x.txt", b"1")},
        },
        "json": {"json": {**TEXT, "text": {"body": "hi"}, "access_token": key}},
    }


@pytest.mark.parametrize("place", list(_places("k")))
def test_the_key_is_accepted_in_every_place_and_never_reaches_meta(proxied: Proxied, place: str):
    """Header (Bearer/OAuth), query, urlencoded and multipart fields, JSON field: one send each."""
    c = proxied.client(key="")
    r = c.post(f"/v25.0/{proxied.phone_id}/messages", **_places(proxied.key)[place])
    assert r.status_code == 200, r.text
    assert proxied.accepted() == ["hi"]
    calls = proxied.state.calls()
    # The sandbox logs the fingerprint of the token it was given: the Meta token, not the key.
    from permatoken._secret import fingerprint

    assert [c["token_fingerprint"] for c in calls] == [fingerprint(proxied.token())]


@pytest.mark.parametrize(
    ("first", "second"),
    [("bearer", "query"), ("query", "form"), ("bearer", "json"), ("bearer", "multipart")],
)
def test_a_key_in_two_places_is_refused_and_nothing_is_sent(
    proxied: Proxied, first: str, second: str
):
    places = _places(proxied.key)
    args = {
        **places[second],
        **{k: v for k, v in places[first].items() if k in ("headers", "params")},
    }
    r = proxied.client(key="").post(f"/v25.0/{proxied.phone_id}/messages", **args)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == 100 and error["message"].startswith(
        "permatoken: the access token was sent 2"
    )
    assert r.headers["x-permatoken-error"] == "duplicate_key"
    assert proxied.state.calls() == []


def test_missing_unknown_and_revoked_keys_answer_like_graph(proxied: Proxied):
    """No key: 401/104; a Meta token, an unknown or a revoked key: 401/190 saying what to fix."""
    r = proxied.client(key="").get("/v25.0/me")
    assert (r.status_code, r.json()["error"]["code"]) == (401, 104)
    assert r.json()["error"]["type"] == "OAuthException"
    meta_token = proxied.token()
    for bad in (meta_token, "pt_" + "x" * 43):
        r = proxied.client(key=bad).get("/v25.0/me")
        assert (r.status_code, r.json()["error"]["code"]) == (401, 190), r.text
        assert "permatoken API key" in r.json()["error"]["message"]
        assert "invalid_token" in r.headers["www-authenticate"]
    assert meta_token not in r.text
    admin = proxied.broker.client(proxied.broker.key("admin"))
    kid = next(k["id"] for k in admin.get("/v1/keys").json()["items"] if k["role"] == "app")
    assert admin.delete(f"/v1/keys/{kid}").status_code == 200
    r = proxied.client().get("/v25.0/me")
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert proxied.state.calls() == []


@pytest.mark.parametrize("broker_config", [replace(TEST_CONFIG, auth_burst=3)])
def test_failures_spend_the_brokers_throttle(proxied: Proxied):
    """Bad keys at the proxy and at /v1 share one bucket; past it: 429 with code 4, Retry-After."""
    bad = "pt_" + "y" * 43
    for _ in range(2):
        assert proxied.client(key=bad).get("/v25.0/me").status_code == 401
    r = proxied.broker.client(bad).get(f"/v1/tokens/{NAME}")
    assert r.status_code == 401
    r = proxied.client(key=bad).get("/v25.0/me")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == 4 and r.json()["error"]["is_transient"] is True
    # A working key is never locked out by others' failures.
    assert proxied.send(proxied.client(), "still works").status_code == 200


def test_a_key_reaches_only_its_grants_and_the_denial_is_audited(proxied: Proxied):
    """Foreign names: 403/200 (before existence: same answer for a name that does not exist);
    an unknown name within the grants: 404/100; an operator key: 403."""
    lb = proxied.broker
    globex = lb.key("app", "globex/*")
    for name in ("acme/messaging", "acme/nothing"):
        r = httpx.get(
            f"{lb.url}/graph/{name}/-/v25.0/me", headers={"Authorization": f"Bearer {globex}"}
        )
        assert (r.status_code, r.json()["error"]["code"]) == (403, 200)
        assert r.headers["x-permatoken-error"] == "forbidden"
    # Within the grants, but no such credential:
    r = httpx.get(
        f"{lb.url}/graph/acme/nothing/-/v25.0/me",
        headers={"Authorization": f"Bearer {proxied.key}"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, 100)
    operator = lb.key("operator")
    r = httpx.get(
        f"{lb.url}/graph/{NAME}/-/v25.0/me", headers={"Authorization": f"Bearer {operator}"}
    )
    assert r.status_code == 403
    assert proxied.state.calls() == []
    admin = lb.client(lb.key("admin"))

    def denials() -> list[dict[str, Any]]:
        return admin.get("/v1/audit", params={"action": "denied.read_token"}).json()["items"]

    from .conftest import until

    until(lambda: len(denials()) == 3)
    assert {d["target"] for d in denials()} == {"acme/messaging", "acme/nothing"}
