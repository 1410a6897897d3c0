"""Shared fixtures: a seeded sandbox on a frozen clock, reached in-process or over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from _live_sandbox import ThreadSandbox
from permatoken.sandbox import SandboxConfig, SandboxState, create_app

from ._support import make_state


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config() -> SandboxConfig:
    """Override in a test module (or parametrize) to change the sandbox's behaviour."""
    return SandboxConfig()


@pytest.fixture
def state(config: SandboxConfig) -> SandboxState:
    return make_state(config)


@pytest.fixture
def app(state: SandboxState) -> Starlette:
    return create_app(state)


@pytest.fixture
def fx(state: SandboxState) -> dict[str, Any]:
    return state.fixtures()


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        yield c


@pytest.fixture
def live(state: SandboxState) -> Iterator[ThreadSandbox]:
    with ThreadSandbox(state) as server:
        yield server
