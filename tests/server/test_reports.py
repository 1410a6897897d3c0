"""Failure reports: a storm for one dead version makes one upstream call; answers per role."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.store import Store

from .conftest import LiveBroker, add_manual

MINT = "POST /{system-user-id}/access_tokens"


def mintable(store: Store, world: dict[str, Any], sandbox: Any) -> str:
    """acme/wa: a system-user token that can be re-minted with the stored acme/admin token."""
    app = world["apps"][0]
    admin_user = next(u for u in world["system_users"] if u["name"] == "Sandbox Admin")
    store.put_app(app["id"], Secret(app["secret"]))
    meta = VersionMeta(token_type="SYSTEM_USER")
    store.add_credential(
        NewCredential(name="acme/admin", issuer="manual", app_id=app["id"]),
        Secret(world["tokens"]["system_user"]["value"]),
        meta,
    )
    value = sandbox.state.create_token("system_user", system_user_id=admin_user["id"])["value"]
    store.add_credential(
        NewCredential(
            name="acme/wa",
            issuer="meta-system-mint",
            app_id=app["id"],
            options={"system_user_id": admin_user["id"], "admin_credential": "acme/admin"},
        ),
        Secret(value),
        meta,
    )
    return str(value)


def test_200_concurrent_reports_make_one_upstream_mint(
    live_broker: LiveBroker, world: dict[str, Any], sandbox: Any
) -> None:
    """200 apps report v1 dead at once: one mint in the sandbox, all get the same new version."""
    dead = mintable(live_broker.store, world, sandbox)
    sandbox.state.revoke_token(dead)
    sandbox.state.clear_logs()
    key = live_broker.key("app", "acme/*")

    async def storm() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        async with httpx.AsyncClient(
            base_url=live_broker.url,
            limits=limits,
            timeout=60,
            headers={"Authorization": f"Bearer {key}"},
        ) as c:
            body = {"name": "acme/wa", "version": 1, "code": 190, "subcode": 460}
            return await asyncio.gather(*(c.post("/v1/reports", json=body) for _ in range(200)))

    answers = asyncio.run(storm())
    assert {r.status_code for r in answers} == {200}, {
        r.text for r in answers if r.status_code != 200
    }
    bodies = [r.json() for r in answers]
    assert {b["status"] for b in bodies} <= {"renewed", "newer_exists"}
    assert {b["version"] for b in bodies} == {2}
    tokens = {b["token"] for b in bodies}
    assert len(tokens) == 1 and dead not in tokens
    assert len(sandbox.state.calls(MINT)) == 1
    assert live_broker.store.version("acme/wa").version == 2


def test_operators_get_the_outcome_without_the_token(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """A newer version answers at once; only callers allowed to read tokens get its value."""
    add_manual(live_broker.store, "acme/wa", new_token())
    live_broker.engine.rotate("acme/wa", value=Secret(new_token()))
    report = {"name": "acme/wa", "version": 1, "code": 190}
    app = (
        live_broker.client(live_broker.key("app", "acme/*")).post("/v1/reports", json=report).json()
    )
    assert app["status"] == "newer_exists" and app["version"] == 2 and app["token"]
    op = live_broker.client(live_broker.key("operator")).post("/v1/reports", json=report).json()
    assert op["status"] == "newer_exists" and op["version"] == 2 and op.get("token") is None


def test_bad_report_bodies_get_clear_4xx(live_broker: LiveBroker) -> None:
    """Bad JSON → 400, unknown field / wrong type / missing field → 422, > 64 KiB → 413."""
    c = live_broker.client(live_broker.key("admin"))
    r = c.post("/v1/reports", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = c.post("/v1/reports", json={"name": "acme/wa", "version": 1, "colour": "red"})
    assert r.status_code == 422 and "colour: unknown field" in r.json()["error"]["message"]
    r = c.post("/v1/reports", json={"name": "acme/wa", "version": "1"})
    assert r.status_code == 422 and "version" in r.json()["error"]["message"]
    r = c.post("/v1/reports", json={"version": 1})
    assert r.status_code == 422 and "name" in r.json()["error"]["message"]
    r = c.post("/v1/reports", content=b'{"name": "' + b"a" * 70_000 + b'"}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = c.post("/v1/reports", json={"name": "Not A Name", "version": 1})
    assert r.status_code == 422
