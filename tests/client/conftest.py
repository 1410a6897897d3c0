"""Fixtures for the SDK tests: a sandbox process and a store whose credential can be re-minted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from permatoken.settings import load_settings

from ._support import Sandbox, World, add_credentials


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    """Override in a module to change the sandbox's limits (``SandboxConfig`` fields)."""
    return {}


@pytest.fixture
def sandbox(sandbox_config: dict[str, Any]) -> Iterator[Sandbox]:
    sb = Sandbox(**sandbox_config)
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture
def world(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, home: Any) -> World:
    """Sandbox + initialised SQLite store; the environment says the same to subprocesses."""
    from conftest import init_store  # the suite's root conftest
    from permatoken.store import open_store

    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", sandbox.url)
    settings = load_settings()
    init_store(settings)
    store = open_store(settings)
    try:
        phone, first = add_credentials(store, sandbox)
    finally:
        store.close()
    return World(sandbox, settings, phone, first)


@pytest.fixture
def store(world: World) -> Iterator[Any]:
    from permatoken.store import open_store

    st = open_store(world.settings)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def broker(world: World) -> Iterator[Any]:
    """`permatoken serve --no-scheduler` on the world's store."""
    from ._broker import Broker

    b = Broker().start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def api_key(world: World) -> str:
    """An app key granted acme/*."""
    from ._broker import create_key

    return create_key("acme/*")
