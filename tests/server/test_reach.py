"""A grant-limited key reaches nothing beyond its grants through keys or shared apps."""

from __future__ import annotations

from typing import Any

from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.server.keystore import KeyStore

from .conftest import LiveBroker


def test_a_grant_limited_admin_cannot_mint_a_wider_key(live_broker: LiveBroker) -> None:
    """An admin granted acme/* creates keys within acme/* only; no-grant keys would reach all."""
    admin = live_broker.client(live_broker.key("admin", "acme/*"))
    for grants in ([], ["**"], ["globex/*"], ["acme/*", "globex/*"], ["acme/**"]):
        r = admin.post("/v1/keys", json={"role": "admin", "grants": grants})
        assert r.status_code == 403, (grants, r.text)
    assert len(KeyStore(live_broker.store).list()) == 1, "a refused key was stored"
    ok = admin.post("/v1/keys", json={"role": "app", "grants": ["acme/wa"]})
    assert ok.status_code == 201 and ok.json()["grants"] == ["acme/wa"]


def test_a_grant_limited_admin_sees_and_revokes_only_keys_within_its_grants(
    live_broker: LiveBroker,
) -> None:
    keys = KeyStore(live_broker.store)
    own, _ = keys.create("app", ["acme/wa"], actor="test")
    globex, _ = keys.create("app", ["globex/*"], actor="test")
    root, _ = keys.create("admin", actor="test")
    admin = live_broker.client(live_broker.key("admin", "acme/*"))
    listed = {k["id"] for k in admin.get("/v1/keys").json()["items"]}
    assert own.id in listed and not listed & {globex.id, root.id}
    for foreign in (globex.id, root.id):
        r = admin.delete(f"/v1/keys/{foreign}")
        assert r.status_code == 404 and r.json() == {
            "error": {"code": "not_found", "message": "no API key with that id"}
        }
        assert keys.get(foreign).revoked_at is None
    assert admin.delete(f"/v1/keys/{own.id}").status_code == 200


def _app_used_by(lb: LiveBroker, app_id: str, name: str) -> None:
    lb.store.put_app(app_id, Secret("the-original-app-secret"))
    lb.store.add_credential(
        NewCredential(name=name, app_id=app_id), Secret("zqSomeToken0123456789abc"), VersionMeta()
    )


def test_an_operator_cannot_change_an_app_another_tenant_uses(
    live_broker: LiveBroker, emitted: Any
) -> None:
    """Overwriting globex's app secret would break every globex credential: 403, unchanged."""
    _app_used_by(live_broker, "111111", "globex/wa")
    _app_used_by(live_broker, "222222", "acme/wa")
    op = live_broker.client(live_broker.key("operator", "acme/*"))
    r = op.post("/v1/apps", json={"id": "111111", "secret": "attacker-chosen-secret"})
    assert r.status_code == 403, r.text
    assert live_broker.store.app_secret("111111").reveal() == "the-original-app-secret"
    assert op.post("/v1/apps", json={"id": "222222", "name": "acme app"}).status_code == 200
    assert op.post("/v1/apps", json={"id": "333333", "secret": "new-app"}).status_code == 200
    seen = {a["id"] for a in op.get("/v1/apps").json()["items"]}
    assert seen == {"222222", "333333"}
    everyone = live_broker.client(live_broker.key("reader")).get("/v1/apps").json()["items"]
    assert {a["id"] for a in everyone} == {"111111", "222222", "333333"}
    emitted.watch("the-original-app-secret", "attacker-chosen-secret", "new-app")


def test_names_in_odd_encodings_do_not_reach_past_a_grant(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """Percent-encoded slashes, dot segments, case and trailing slashes: 403/404/422, never 200."""
    token = new_token()
    live_broker.store.add_credential(
        NewCredential(name="globex/wa"), Secret(token), VersionMeta(token_type="SYSTEM_USER")
    )
    app = live_broker.client(live_broker.key("app", "acme/**"))
    for path in (
        "/v1/tokens/acme/..%2Fglobex%2Fwa",
        "/v1/tokens/acme%2F..%2Fglobex/wa",
        "/v1/tokens/acme/../globex/wa",
        "/v1/tokens/ACME/../globex/wa",
        "/v1/tokens/acme/%2E%2E/globex/wa",
        "/v1/tokens/globex/wa/",
        "/v1/tokens/acme/x/../../globex/wa",
    ):
        r = app.get(path)
        assert r.status_code in (403, 404, 422), (path, r.status_code)
        assert token not in r.text
    r = app.get("/v1/stream", params={"names": "acme/x,globex/wa"})
    assert r.status_code == 403
