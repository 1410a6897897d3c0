"""Tech Provider fixtures: a sandbox in a thread with fast webhook retries, the broker in a
thread with a webhook verify token, and ``SignedUp``: a client business onboarded the way a
Tech Provider does it (Embedded Signup code exchanged, credential stored, WABA subscribed)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from _live_sandbox import ThreadSandbox, seeded_state
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.sandbox import SandboxConfig
from permatoken.settings import Settings
from permatoken.store import Store
from server.conftest import (  # noqa: F401  (fixtures shared with the broker tests)
    LiveBroker,
    broker_config,
    engine,
    live_broker,
    until,
)

VERIFY_TOKEN = "vt-" + "q7Zr2mX9pL4wK8sN3bV6"
FAST = {"webhook_retry_base_seconds": 0.01, "webhook_retry_cap_seconds": 0.05}


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(**FAST)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[ThreadSandbox]:
    with ThreadSandbox(seeded_state(sandbox_config)) as server:
        yield server
        server.state.webhooks.close()


@pytest.fixture
def store_url(request: pytest.FixtureRequest, home: Any) -> Iterator[str]:
    """SQLite unless parametrized with ``postgresql`` (indirect)."""
    from conftest import fresh_pg_database

    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{home / 'permatoken.db'}"
        return
    with fresh_pg_database(migrated=True) as url:
        yield url


@pytest.fixture
def broker_settings(settings: Settings, sandbox: ThreadSandbox) -> Settings:
    return settings.model_copy(
        update={"graph_url": sandbox.url, "webhook_verify_token": Secret(VERIFY_TOKEN)}
    )


def app_of(world: dict[str, Any], index: int = 0) -> tuple[str, str]:
    app = world["apps"][index]
    return str(app["id"]), str(app["secret"])


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(waba_id: str, event: str, at: int, **value: Any) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "time": at,
                "changes": [{"field": "account_update", "value": {"event": event, **value}}],
            }
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class SignedUp:
    name: str
    token: str
    app_id: str
    business_id: str
    waba_id: str
    phone_number_id: str


def sign_up(sandbox: ThreadSandbox, store: Store, tenant: str = "acme") -> SignedUp:
    """Embedded Signup by hand (exchange, store, subscribe): the state the webhook tests need."""
    world = sandbox.state.fixtures()
    app_id, secret = app_of(world)
    made = sandbox.state.embedded_signup()
    version = world["graph_version"]
    with httpx.Client(base_url=sandbox.url) as http:
        token = http.get(
            f"/{version}/oauth/access_token",
            params={"client_id": app_id, "client_secret": secret, "code": made["code"]},
        ).json()["access_token"]
        http.post(
            f"/{version}/{made['waba_id']}/subscribed_apps",
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
    try:
        store.app_secret(app_id)
    except Exception:
        store.put_app(app_id, Secret(secret))
    name = f"{tenant}/{made['waba_id']}"
    store.add_credential(
        NewCredential(
            name=name,
            app_id=app_id,
            business_id=made["business_id"],
            waba_ids=(made["waba_id"],),
            phone_number_id=made["phone_number_id"],
        ),
        Secret(token),
        VersionMeta(token_type="SYSTEM_USER", waba_ids=(made["waba_id"],)),
    )
    return SignedUp(
        name, token, app_id, made["business_id"], made["waba_id"], made["phone_number_id"]
    )
