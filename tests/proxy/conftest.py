"""Proxy fixtures: the broker in a thread over a sandbox in a thread (fast, in-process checks),
and ``Proxied``: a mintable ``acme/messaging`` credential, an app key, and a client of its proxy.

The library tests (``test_libraries.py``…) use real processes instead: ``permatoken serve`` and a
sandbox process, through ``client._support`` / ``client._broker``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from client._support import MINT, NAME, SEND, add_credentials
from conftest import fresh_pg_database
from permatoken.settings import ProxySettings, Settings
from server.conftest import (  # noqa: F401  (fixtures shared with the broker tests)
    LiveBroker,
    broker_config,
    engine,
    fast_config,
    live_broker,
    sandbox,
    until,
    world,
)

__all__ = ["MINT", "NAME", "SEND", "Proxied", "until"]


@pytest.fixture
def store_url(request: pytest.FixtureRequest, home: Any) -> Iterator[str]:
    """SQLite unless a test asks for PostgreSQL (``parametrize("store_url", ["postgresql"],
    indirect=True)``): the proxy's logic does not depend on the database, its reports do."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{home / 'permatoken.db'}"
        return
    with fresh_pg_database(migrated=True) as url:
        yield url


@pytest.fixture
def proxy_settings() -> ProxySettings:
    """Override (or parametrize) to change the proxy's settings."""
    return ProxySettings()


@pytest.fixture
def broker_settings(settings: Settings, sandbox: Any, proxy_settings: ProxySettings) -> Settings:  # noqa: F811
    return settings.model_copy(update={"graph_url": sandbox.url, "proxy": proxy_settings})


class _StateSandbox:
    """A thread sandbox seen through the ``ProcessSandbox`` calls ``add_credentials`` makes."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.fixtures = state.fixtures()

    def create_token(self, *, kind: str, **spec: Any) -> dict[str, Any]:
        return self.state.create_token(kind, **spec)  # type: ignore[no-any-return]


@dataclass
class Proxied:
    broker: LiveBroker
    state: Any  # the sandbox's SandboxState
    phone_id: str
    key: str

    @property
    def base_url(self) -> str:
        return f"{self.broker.url}/graph/{NAME}/-"

    def client(self, *, key: str | None = None, **kw: Any) -> httpx.Client:
        """An httpx client whose base URL is the proxy's, sending ``key`` as a Bearer token."""
        headers = {"Authorization": f"Bearer {key or self.key}"} if key != "" else {}
        c = httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kw)
        self.broker.clients.append(c)
        return c

    def send(self, c: httpx.Client, text: str, **kw: Any) -> httpx.Response:
        body = {"messaging_product": "whatsapp", "to": "16505551234", "text": {"body": text}}
        return c.post(f"/v25.0/{self.phone_id}/messages", json=body, **kw)

    def token(self) -> str:
        return self.broker.store.reveal(NAME).reveal()  # type: ignore[no-any-return]

    def revoke(self) -> str:
        value = self.token()
        self.state.revoke_token(value)
        return value

    def accepted(self) -> list[str]:
        return [m["content"]["body"] for m in self.state.messages() if m["type"] == "text"]

    def mints(self) -> int:
        return len([c for c in self.state.calls(MINT) if c["status"] == 200])

    @property
    def proxy(self) -> Any:
        """The GraphProxy behind the broker's /graph route."""
        routes = self.broker.app.routes
        return next(r.app for r in routes if getattr(r, "path", "") == "/graph/{path:path}")

    def sends(self) -> list[int | None]:
        """The error code of every send the sandbox received (None: accepted)."""
        return [c["error_code"] for c in self.state.calls(SEND)]


@pytest.fixture
def proxied(live_broker: LiveBroker, sandbox: Any) -> Iterator[Proxied]:  # noqa: F811
    phone, _ = add_credentials(live_broker.store, _StateSandbox(sandbox.state))
    yield Proxied(live_broker, sandbox.state, phone, live_broker.key("app", "acme/*"))
