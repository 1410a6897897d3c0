"""/metrics, /healthz, /readyz, the OpenAPI document, and the key CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client.parser import text_string_to_metric_families

from permatoken.models import VersionMeta
from permatoken.server import BrokerConfig
from permatoken.store import engine as store_engine
from permatoken.store.schema import metadata

from .conftest import LiveBroker, add_manual


def test_metrics_describe_credentials_and_traffic_without_secrets(
    live_broker: LiveBroker, new_token: Any, emitted: Any
) -> None:
    """Expiry and health per credential, reads by result; no token or key in the text."""
    token = new_token()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    add_manual(
        live_broker.store,
        "acme/wa",
        token,
        version_meta=VersionMeta(token_type="SYSTEM_USER", expires_at=expires),
    )
    app_key = live_broker.key("app", "acme/*")
    live_broker.client(app_key).get("/v1/tokens/acme/wa")
    reader = live_broker.key("reader")
    text = live_broker.client(reader).get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert (
        samples[
            (
                "permatoken_credential_expiry_timestamp_seconds",
                (("name", "acme/wa"), ("tenant", "acme")),
            )
        ]
        == expires.timestamp()
    )
    assert (
        samples[
            (
                "permatoken_credential_health",
                (("health", "ok"), ("name", "acme/wa"), ("tenant", "acme")),
            )
        ]
        == 1
    )
    assert samples[("permatoken_token_reads_total", (("result", "ok"),))] == 1
    assert "permatoken_renewals_total" in text and "permatoken_scheduler_lag_seconds" in text
    assert "permatoken_notice_deliveries_total" in text
    emitted.watch(token, app_key, reader)
    assert live_broker.client(app_key).get("/metrics").status_code == 403
    assert live_broker.client().get("/metrics").status_code == 401


def test_metrics_can_be_public(
    broker_settings: Any, store: Any, engine: Any, fast_config: Callable[..., BrokerConfig]
) -> None:
    with LiveBroker(broker_settings, store, engine, fast_config(metrics_public=True)) as lb:
        assert lb.client().get("/metrics").status_code == 200


def test_health_and_readiness(live_broker: LiveBroker) -> None:
    assert live_broker.client().get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = live_broker.client().get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["database"] and ready["checks"]["key"]


def test_openapi_describes_every_route(live_broker: LiveBroker) -> None:
    doc = live_broker.client().get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    routes = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert ("/v1/tokens/{name}", "get") in routes and (
        "/v1/credentials/{name}/rotate",
        "post",
    ) in routes
    assert ("/v1/onboarding/embedded-signup", "post") in routes
    assert len(routes) == 22
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_keys_cli_create_list_revoke(store: Any, cli: Callable[..., Any]) -> None:
    """`keys create` prints the key once; `keys list` shows ids and prefixes; `revoke` works."""
    r = cli(
        "keys",
        "create",
        "--role",
        "app",
        "--grant",
        "acme/*",
        "--expires-in",
        "90d",
        "--name",
        "billing",
        record=False,
    )
    assert r.rc == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("pt_") and len(key) == 46
    listed = cli("keys", "list", "--json")
    assert key not in listed.stdout
    (row,) = listed.json()
    assert (
        row["role"] == "app"
        and row["grants"] == ["acme/*"]
        and row["label"] == "billing"
        and row["expires_at"]
    )
    assert cli("keys", "revoke", row["id"]).rc == 0
    assert cli("keys", "list", "--json").json()[0]["revoked_at"] is not None
    bad = cli("keys", "create", "--role", "app")
    assert bad.rc == 2 and "at least one --grant" in bad.stderr
    assert cli("keys", "status").rc == 0  # the KEK commands still work


def test_broker_tables_match_their_migration(store_url: str, store: Any) -> None:
    """Migration 0002 creates exactly what schema_broker declares (when it is imported)."""
    import permatoken.store.schema_broker  # noqa: F401

    engine = store_engine.create_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
    finally:
        engine.dispose()
    ours = [d for d in diff if "api_keys" in repr(d) or "audit_log" in repr(d)]
    assert ours == []


@pytest.mark.parametrize("name", ["acme/rotate", "acme/x/inspect"])
def test_names_ending_in_an_action_word_are_reachable(
    live_broker: LiveBroker, new_token: Any, name: str
) -> None:
    """GET/PATCH/DELETE take the whole path as the name; POST …/rotate always means the action."""
    add_manual(live_broker.store, name, new_token())
    admin = live_broker.client(live_broker.key("admin"))
    assert admin.get(f"/v1/credentials/{name}").json()["name"] == name
    assert admin.get(f"/v1/tokens/{name}").json()["name"] == name
    assert admin.delete(f"/v1/credentials/{name}").status_code == 204
