"""Broker fixtures: a live sandbox, a live broker (uvicorn in a thread), keys, credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from _live_sandbox import ThreadSandbox, ThreadServer
from _waiting import wait_for
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.rotation import RenewalEngine
from permatoken.server import BrokerConfig, create_app
from permatoken.server.keystore import KeyStore
from permatoken.service import build_engine
from permatoken.settings import Settings
from permatoken.store import Store

#: Fast background work, generous failed-auth budget (the limiter has its own test).
TEST_CONFIG = BrokerConfig(
    audit_interval=0.05, events_poll_interval=0.2, auth_burst=100_000, keepalive=1.0
)


@pytest.fixture
def sandbox() -> Iterator[ThreadSandbox]:
    """The sandbox on loopback, seeded, on the real clock (the engine uses the system clock)."""
    with ThreadSandbox() as server:
        yield server


@pytest.fixture
def world(sandbox: ThreadSandbox) -> dict[str, Any]:
    return sandbox.state.fixtures()


@pytest.fixture
def broker_settings(settings: Settings, sandbox: ThreadSandbox) -> Settings:
    return settings.model_copy(update={"graph_url": sandbox.url})


class LiveBroker(ThreadServer):
    """``create_app`` under a real uvicorn on 127.0.0.1 (lifespan on), in a background thread."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: RenewalEngine,
        config: BrokerConfig,
        record: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings, self.store, self.engine = settings, store, engine
        self.app = create_app(settings, store, engine, config=config)
        self.broker = self.app.state.broker
        super().__init__(self.app, lifespan="on", timeout_graceful_shutdown=2, stop_timeout=20)
        self._record = record
        self.clients: list[httpx.Client] = []

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        loop = self.broker.hub.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.broker.begin_shutdown)
        super().stop()

    def _hook(self, response: httpx.Response) -> None:
        if self._record is None:
            return
        path = response.request.url.path
        if path == "/v1/stream" and response.status_code < 400:
            return
        if response.status_code >= 400 or not (
            path.startswith("/v1/tokens/") or path in ("/v1/reports", "/v1/keys")
        ):
            response.read()
            self._record(
                f"{response.request.method} {path} -> {response.status_code}", response.text
            )

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        c = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=kw.pop("timeout", 30.0),
            event_hooks={"response": [self._hook]},
            **kw,
        )
        self.clients.append(c)
        return c

    def key(self, role: str, *grants: str) -> str:
        _, value = KeyStore(self.store).create(role, list(grants), actor="test")
        return value.reveal()


@pytest.fixture
def broker_config() -> BrokerConfig:
    return TEST_CONFIG


@pytest.fixture
def engine(broker_settings: Settings, store: Store) -> Iterator[RenewalEngine]:
    eng = build_engine(broker_settings, store)
    eng.wait_timeout = 30
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def live_broker(
    broker_settings: Settings,
    store: Store,
    engine: RenewalEngine,
    broker_config: BrokerConfig,
    emitted: Any,
    sandbox: ThreadSandbox,
) -> Iterator[LiveBroker]:
    with LiveBroker(broker_settings, store, engine, broker_config, record=emitted.add) as lb:
        yield lb
    # Nothing the broker said (errors, management answers, metrics, logs) may hold a token.
    with sandbox.state.lock:
        values = list(sandbox.state.tokens)
    emitted.watch(*values)


def add_manual(
    store: Store, name: str, token: str, *, version_meta: VersionMeta | None = None, **spec: Any
) -> None:
    """Store ``token`` as version 1 of a manual credential, offline."""
    store.add_credential(
        NewCredential(name=name, **spec),
        Secret(token),
        version_meta or VersionMeta(token_type="SYSTEM_USER"),
    )


def until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Wait for an observable condition (polling), failing the test if it never holds."""
    wait_for(condition, what="the condition", timeout=timeout)


@pytest.fixture
def fast_config() -> Callable[..., BrokerConfig]:
    return lambda **kw: replace(TEST_CONFIG, **kw)
