"""Options that name another credential or an upstream server stay within the caller's reach.

An operator granted ``acme/*`` must not point an acme credential at globex's admin token (at
create, at PATCH, and again at use when its grants changed), nor send an acme credential's
stored refresh token or password to a server of its choosing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from _live_sandbox import ThreadServer
from permatoken._secret import Secret
from permatoken.models import Health, NewCredential, VersionMeta

from .conftest import LiveBroker

MINT = "POST /{system-user-id}/access_tokens"


@pytest.fixture
def tenants(live_broker: LiveBroker, world: dict[str, Any], sandbox: Any) -> dict[str, str]:
    """globex/admin (a system-user admin token) and acme/wa (minted by system user S)."""
    store = live_broker.store
    app = world["apps"][0]
    user = next(u for u in world["system_users"] if u["name"] == "Sandbox Admin")
    store.put_app(app["id"], Secret(app["secret"]))
    meta = VersionMeta(token_type="SYSTEM_USER")
    store.add_credential(
        NewCredential(name="globex/admin", app_id=app["id"]),
        Secret(world["tokens"]["system_user"]["value"]),
        meta,
    )
    store.add_credential(
        NewCredential(
            name="acme/wa",
            issuer="meta-system-mint",
            app_id=app["id"],
            options={"system_user_id": user["id"]},
        ),
        Secret(sandbox.state.create_token("system_user", system_user_id=user["id"])["value"]),
        meta,
    )
    sandbox.state.clear_logs()
    return {"app_id": app["id"], "system_user_id": user["id"]}


def test_an_operator_cannot_create_a_credential_minted_with_another_tenants_token(
    live_broker: LiveBroker, tenants: dict[str, str], sandbox: Any
) -> None:
    """POST with admin_credential=globex/admin by an acme/* operator: 403, nothing minted or stored."""
    op = live_broker.client(live_broker.key("operator", "acme/*"))
    r = op.post(
        "/v1/credentials",
        json={
            "name": "acme/stolen",
            "issuer": "meta-system-mint",
            "app_id": tenants["app_id"],
            "options": {
                "system_user_id": tenants["system_user_id"],
                "admin_credential": "globex/admin",
            },
        },
    )
    assert r.status_code == 403, r.text
    assert "admin_credential" in r.json()["error"]["message"]
    assert sandbox.state.calls(MINT) == []
    admin = live_broker.client(live_broker.key("admin"))
    assert admin.get("/v1/credentials/acme/stolen").status_code == 404
    denied = admin.get("/v1/audit", params={"action": "denied.manage"}).json()["items"]
    assert denied and "globex/admin" in denied[0]["detail"]["reason"]


def test_an_operator_cannot_patch_a_reference_to_another_tenant(
    live_broker: LiveBroker, tenants: dict[str, str]
) -> None:
    """PATCH admin_credential=globex/admin: 403, the stored options are unchanged."""
    before = live_broker.store.get("acme/wa").options
    op = live_broker.client(live_broker.key("operator", "acme/*"))
    options = {"system_user_id": tenants["system_user_id"], "admin_credential": "globex/admin"}
    r = op.patch("/v1/credentials/acme/wa", json={"options": options})
    assert r.status_code == 403, r.text
    assert live_broker.store.get("acme/wa").options == before
    # Reserved option names cannot be supplied to forge who set a reference.
    forged = {**options, "_provenance": "cli"}
    r = live_broker.client(live_broker.key("admin")).patch(
        "/v1/credentials/acme/wa", json={"options": forged}
    )
    assert r.status_code == 422 and "reserved" in r.json()["error"]["message"]


def test_a_reference_is_checked_again_at_use(
    live_broker: LiveBroker, tenants: dict[str, str], sandbox: Any
) -> None:
    """A key allowed to reach globex/admin sets the reference; once revoked, no mint uses it."""
    store = live_broker.store
    wide = live_broker.key("operator", "acme/*", "globex/admin")
    options = {"system_user_id": tenants["system_user_id"], "admin_credential": "globex/admin"}
    r = live_broker.client(wide).patch("/v1/credentials/acme/wa", json={"options": options})
    assert r.status_code == 200, r.text
    admin = live_broker.client(live_broker.key("admin"))
    ok = admin.post("/v1/credentials/acme/wa/rotate", json={"force": True}).json()
    assert ok["status"] == "rotated" and len(sandbox.state.calls(MINT)) == 1, ok

    wide_id = next(
        k["id"] for k in admin.get("/v1/keys").json()["items"] if k["prefix"] == wide[:7]
    )
    assert admin.delete(f"/v1/keys/{wide_id}").status_code == 200
    out = admin.post("/v1/credentials/acme/wa/rotate", json={"force": True}).json()
    assert out["status"] == "needs_human", out
    assert "admin_credential" in out["message"] and "revoked" in out["message"]
    assert len(sandbox.state.calls(MINT)) == 1, (
        "the foreign token was used after the key's revocation"
    )
    cred = store.get("acme/wa")
    assert cred.health is Health.NEEDS_HUMAN and "admin_credential" in (cred.health_reason or "")
    assert store.version("acme/wa").version == ok["version"]


class Receiver:
    """A token endpoint somebody else controls: records what it is sent, answers a token."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

        async def token(request: Request) -> JSONResponse:
            self.received.append(dict(await request.form()))
            return JSONResponse({"access_token": "zqAttackerToken0123456789", "expires_in": 3600})

        self.server = ThreadServer(Starlette(routes=[Route("/token", token, methods=["POST"])]))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    with r.server:
        yield r


def _oauth2(lb: LiveBroker, sandbox: Any, world: dict[str, Any], key: str) -> dict[str, Any]:
    o = world["providers"]["oauth2"]
    options = {"token_url": sandbox.url + o["token_url_path"], "client_id": o["client_id"]}
    r = lb.client(key).post(
        "/v1/credentials",
        json={
            "name": "acme/bsp",
            "issuer": "oauth2-refresh",
            "options": options,
            "secrets": {"refresh_token": o["refresh_token"], "client_secret": o["client_secret"]},
        },
    )
    assert r.status_code == 201, r.text
    return options


def test_an_operator_cannot_send_stored_secrets_to_its_own_server(
    live_broker: LiveBroker, sandbox: Any, world: dict[str, Any], receiver: Receiver
) -> None:
    """PATCH token_url by an operator: 403; the next rotation still goes to the real endpoint."""
    op = live_broker.key("operator", "acme/*")
    options = _oauth2(live_broker, sandbox, world, op)
    r = live_broker.client(op).patch(
        "/v1/credentials/acme/bsp",
        json={"options": options | {"token_url": receiver.server.url + "/token"}},
    )
    assert r.status_code == 403 and "token_url" in r.json()["error"]["message"], r.text
    out = live_broker.client(op).post("/v1/credentials/acme/bsp/rotate", json={"force": True})
    assert out.json()["status"] == "rotated", out.text
    assert receiver.received == []
    assert live_broker.store.reveal("acme/bsp").reveal() != "zqAttackerToken0123456789"


def test_an_operator_cannot_move_a_login_url(
    live_broker: LiveBroker, sandbox: Any, world: dict[str, Any], receiver: Receiver
) -> None:
    lf = world["providers"]["login"]
    op = live_broker.client(live_broker.key("operator", "acme/*"))
    options = {"login_url": sandbox.url + lf["url_path"], "username": lf["username"]}
    created = op.post(
        "/v1/credentials",
        json={
            "name": "acme/onprem",
            "issuer": "login",
            "options": options,
            "secrets": {"password": lf["password"]},
        },
    )
    assert created.status_code == 201, created.text
    moved = options | {"login_url": receiver.server.url + "/token"}
    r = op.patch("/v1/credentials/acme/onprem", json={"options": moved})
    assert r.status_code == 403 and "login_url" in r.json()["error"]["message"], r.text
    assert live_broker.store.get("acme/onprem").options["login_url"] == options["login_url"]


def test_an_admin_host_change_is_audited_and_shown_in_status(
    live_broker: LiveBroker, sandbox: Any, world: dict[str, Any], cli: Any
) -> None:
    """The status (API and `permatoken status`) names the new host, the old one, who and when."""
    admin_key = live_broker.key("admin")
    admin = live_broker.client(admin_key)
    options = _oauth2(live_broker, sandbox, world, admin_key)
    port = sandbox.url.rsplit(":", 1)[1]
    moved = options | {"token_url": options["token_url"].replace("127.0.0.1", "localhost")}
    assert admin.patch("/v1/credentials/acme/bsp", json={"options": moved}).status_code == 200
    admin_id = next(k["id"] for k in admin.get("/v1/keys").json()["items"])
    expected = {
        "option": "token_url",
        "host": f"localhost:{port}",
        "previous_host": f"127.0.0.1:{port}",
        "changed_by": f"key:{admin_id}",
    }
    up = admin.get("/v1/credentials/acme/bsp").json()["upstream"]
    assert {k: up[k] for k in expected} == expected and up["changed_at"]
    (listed,) = admin.get("/v1/credentials").json()["items"]
    assert listed["upstream"] == up
    audit = admin.get("/v1/audit", params={"action": "credential.upstream_changed"}).json()
    (record,) = audit["items"]
    assert record["target"] == "acme/bsp" and record["detail"]["token_url"] == {
        "from": f"127.0.0.1:{port}",
        "to": f"localhost:{port}",
    }
    (row,) = json.loads(cli("status", "--json").stdout)
    assert row["upstream"] == up
    human = cli("status").stdout
    assert f"token_url host changed from 127.0.0.1:{port} to localhost:{port}" in human
