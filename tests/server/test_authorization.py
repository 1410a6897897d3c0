"""The authorization matrix: every route x every role x own/foreign grant → the expected status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from permatoken._secret import Secret

from .conftest import LiveBroker, add_manual

ROLES = ("admin", "admin_all", "operator", "reader", "app", "admin_deep", "app_deep")
#: The grant each role's key is created with (None: no grant, i.e. every credential).
GRANT = {
    "admin": "acme/*",
    "admin_all": None,
    "operator": "acme/*",
    "reader": "acme/*",
    "app": "acme/*",
    "admin_deep": "acme/**",
    "app_deep": "acme/**",
}
#: Credential names the matrix runs on, and which of them each grant covers (written out by
#: hand: deriving it from ``grant_matches`` would test the code against itself). Grants match
#: segment by segment: ``acme/*`` is one segment under acme, ``acme/**`` any depth under it,
#: neither reaches a tenant that only starts with "acme" nor "acme" itself.
NAMES = (
    "acme/wa",
    "other/wa",
    "acme/eu/x",
    "acmecorp/x",
    "acme/wa.eu-1",
    "acme-eu/wa",
    "acme/eu-1/x.y",
    "acme",
)
COVERED = {
    "acme/*": {"acme/wa", "acme/wa.eu-1"},
    "acme/**": {"acme/wa", "acme/wa.eu-1", "acme/eu/x", "acme/eu-1/x.y"},
}
OK, NO = "ok", 403
# role → (status for a credential inside the key's grant, status for one outside it)
READ = {
    "admin": (200, NO),
    "admin_all": (200, 200),
    "operator": (NO, NO),
    "reader": (NO, NO),
    "app": (200, NO),
}
REPORT = {
    "admin": (200, NO),
    "admin_all": (200, 200),
    "operator": (200, NO),
    "reader": (NO, NO),
    "app": (200, NO),
}
VIEW = {
    "admin": (200, NO),
    "admin_all": (200, 200),
    "operator": (200, NO),
    "reader": (200, NO),
    "app": (NO, NO),
}
MANAGE = {
    "admin": (OK, NO),
    "admin_all": (OK, OK),
    "operator": (OK, NO),
    "reader": (NO, NO),
    "app": (NO, NO),
}
VIEW_ANY = {"admin": 200, "admin_all": 200, "operator": 200, "reader": 200, "app": NO}
MANAGE_ANY = {"admin": 200, "admin_all": 200, "operator": 200, "reader": NO, "app": NO}
ADMIN_ONLY = {"admin": OK, "admin_all": OK, "operator": NO, "reader": NO, "app": NO}
for _table in (READ, REPORT, VIEW, MANAGE, VIEW_ANY, MANAGE_ANY, ADMIN_ONLY):
    _table.update(admin_deep=_table["admin"], app_deep=_table["app"])

# (method, path with {n} for the credential, JSON body or None, expectations)
NAMED: list[tuple[str, str, Any, dict[str, tuple[Any, Any]]]] = [
    ("GET", "/v1/tokens/{n}", None, READ),
    ("POST", "/v1/reports", {"name": "{n}", "version": 1, "code": 190}, REPORT),
    ("GET", "/v1/credentials/{n}", None, VIEW),
    ("PATCH", "/v1/credentials/{n}", {"purpose": "messaging"}, MANAGE),
    ("POST", "/v1/credentials/{n}/rotate", {}, MANAGE),
    ("POST", "/v1/credentials/{n}/revoke", {"version": 1}, MANAGE),
    ("POST", "/v1/credentials/{n}/inspect", {}, MANAGE),
    ("DELETE", "/v1/credentials/{n}-del-{role}", None, MANAGE),
    (
        "POST",
        "/v1/credentials",
        {"name": "{n}-new-{role}", "token": "zqCreatedValue0123456789", "never_expires": True},
        MANAGE,
    ),
    ("GET", "/v1/events?name={n}", None, VIEW),
    ("GET", "/v1/audit?target={n}", None, VIEW),
    ("GET", "/v1/stream?names={n}", None, READ),
]
UNNAMED: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("GET", "/v1/credentials", None, VIEW_ANY),
    ("GET", "/v1/apps", None, VIEW_ANY),
    ("POST", "/v1/apps", {"id": "123456", "secret": "app-secret-for-matrix"}, MANAGE_ANY),
    ("GET", "/v1/events", None, VIEW_ANY),
    ("GET", "/v1/audit", None, VIEW_ANY),
    ("GET", "/v1/keys", None, ADMIN_ONLY),
    ("POST", "/v1/keys", {"role": "reader", "grants": ["acme/*"]}, ADMIN_ONLY),
    ("DELETE", "/v1/keys/{spare}", None, ADMIN_ONLY),
    (
        "GET",
        "/v1/stream",
        None,
        {
            "admin": 200,
            "admin_all": 200,
            "operator": NO,
            "reader": NO,
            "app": 200,
            "admin_deep": 200,
            "app_deep": 200,
        },
    ),
    ("GET", "/metrics", None, VIEW_ANY),
]
PUBLIC = ["/healthz", "/readyz", "/openapi.json"]


@pytest.fixture
def world_for_matrix(live_broker: LiveBroker, new_token: Any) -> dict[str, str]:
    for name in NAMES:
        add_manual(live_broker.store, name, new_token())
        live_broker.engine.rotate(name, value=Secret(new_token()))  # v2; v1 is previous
        for role in ROLES:
            add_manual(live_broker.store, f"{name}-del-{role}", new_token())
    # Every token in the broker's cache: reads by a key already seen take the fast path
    # (BrokerApp._cached_read), which must refuse exactly what the router refuses.
    warm = live_broker.client(live_broker.key("admin"))
    for name in NAMES:
        assert warm.get(f"/v1/tokens/{name}").status_code == 200
    keys = {
        role: live_broker.key(
            role.removesuffix("_all").removesuffix("_deep"), *filter(None, [GRANT[role]])
        )
        for role in ROLES
    }
    return keys


def _call(c: httpx.Client, method: str, path: str, body: Any) -> int:
    if path.startswith("/v1/stream"):
        with c.stream(method, path) as r:
            return r.status_code
    return c.request(method, path, json=body).status_code


def _fill(value: Any, **subs: str) -> Any:
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, **subs) for k, v in value.items()}
    return value


def _matches(expected: Any, status: int) -> bool:
    if expected == OK:  # allowed: whatever the operation itself answers, never 401/403
        return status not in (401, 403) and status < 500
    return bool(status == expected)


@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(
    live_broker: LiveBroker, world_for_matrix: dict[str, str], role: str
) -> None:
    """Each role reaches exactly what its role and grant (acme/* or acme/**) allow, on every
    route, for names of every depth and with dots and dashes."""
    client = live_broker.client(world_for_matrix[role])
    failures = []
    grant = GRANT[role]
    for method, path, body, table in NAMED:
        for name in NAMES:
            which = 0 if grant is not None and name in COVERED[grant] else 1
            subs = {"n": name, "role": role}
            status = _call(client, method, _fill(path, **subs), _fill(body, **subs))
            if not _matches(table[role][which], status):
                failures.append(
                    f"{method} {_fill(path, **subs)}: {status}, expected {table[role][which]}"
                )
    for method, path, body, expected in UNNAMED:
        spare = live_broker.key("reader")
        from permatoken.server.keystore import KeyStore

        spare_id = next(k.id for k in KeyStore(live_broker.store).list() if k.prefix == spare[:7])
        status = _call(client, method, path.replace("{spare}", spare_id), body)
        if not _matches(expected[role], status):
            failures.append(f"{method} {path}: {status}, expected {expected[role]}")
    assert not failures, "\n".join(failures)


def test_nothing_answers_without_a_key_but_health_and_openapi(
    live_broker: LiveBroker, new_token: Any
) -> None:
    """Every route refuses a request without a key (401) except /healthz, /readyz, /openapi.json."""
    add_manual(live_broker.store, "acme/wa", new_token())
    anonymous = live_broker.client()
    for method, path, body, _ in NAMED:
        subs = {"n": "acme/wa", "role": "anon"}
        assert _call(anonymous, method, _fill(path, **subs), _fill(body, **subs)) == 401, path
    for method, path, body, _ in UNNAMED:
        assert _call(anonymous, method, path.replace("{spare}", "kabc"), body) == 401, path
    for path in PUBLIC:
        assert live_broker.client().get(path).status_code == 200, path
    r = live_broker.client().get("/v1/tokens/acme/wa")
    assert r.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing API key: send an Authorization header with `Bearer pt_…`",
        }
    }
    assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_and_expired_keys_stop_working(live_broker: LiveBroker, new_token: Any) -> None:
    """Revoking a key through the API applies at once on this replica."""
    add_manual(live_broker.store, "acme/wa", new_token())
    admin = live_broker.client(live_broker.key("admin"))
    created = admin.post(
        "/v1/keys", json={"role": "app", "grants": ["acme/*"], "label": "billing"}
    ).json()
    app = live_broker.client(created["key"])
    assert app.get("/v1/tokens/acme/wa").status_code == 200
    assert admin.delete(f"/v1/keys/{created['id']}").json()["revoked_at"] is not None
    r = app.get("/v1/tokens/acme/wa")
    assert r.status_code == 401 and r.json()["error"]["message"] == "this API key was revoked"
    listed = admin.get("/v1/keys").json()["items"]
    assert all("key" not in k and "key_hash" not in k for k in listed)


def test_repeated_failed_authentication_is_slowed_down(live_broker: LiveBroker) -> None:
    """After a burst of bad keys from one address: 429 with Retry-After."""
    live_broker.broker.auth.limiter.burst = 5
    live_broker.broker.auth.limiter._buckets.clear()
    bad = live_broker.client("pt_" + "A" * 43)
    statuses = [bad.get("/v1/credentials").status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    r = bad.get("/v1/credentials")
    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "too_many_failures"


@pytest.mark.parametrize("grant", ["acme/*", "acme/**"])
def test_lists_show_only_the_names_a_grant_covers(
    live_broker: LiveBroker, new_token: Any, grant: str
) -> None:
    """Credentials, events and audit records listed to a reader key are filtered segment by
    segment, at every depth: never a deeper name for acme/*, never acmecorp/ or acme-eu/."""
    for name in NAMES:
        add_manual(live_broker.store, name, new_token())
    admin = live_broker.client(live_broker.key("admin"))
    for name in NAMES:  # one audit record per name
        assert (
            admin.patch(f"/v1/credentials/{name}", json={"purpose": "messaging"}).status_code == 200
        )
    reader = live_broker.client(live_broker.key("reader", grant))
    listed = {c["name"] for c in reader.get("/v1/credentials").json()["items"]}
    assert listed == COVERED[grant]
    events = {e["name"] for e in reader.get("/v1/events").json()["items"]}
    assert events == COVERED[grant]
    audited = {r["target"] for r in reader.get("/v1/audit").json()["items"]}
    assert audited == COVERED[grant]
