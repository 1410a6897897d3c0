"""Fixtures for the renewal tests: a live sandbox, an engine on the test's store, credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from _live_sandbox import StateClock, ThreadSandbox
from permatoken._secret import Secret
from permatoken.models import NewCredential
from permatoken.onboarding import AddResult, add_credential
from permatoken.rotation import RenewalEngine

from ._live import Sandbox, live_sandbox_fixture, sandbox_fixture


@pytest.fixture(scope="session")
def live_sandbox() -> Iterator[ThreadSandbox]:
    yield from live_sandbox_fixture()


@pytest.fixture
def sandbox(live_sandbox: ThreadSandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox_fixture(live_sandbox, monkeypatch)


@pytest.fixture
def world(sandbox: Sandbox, store_url: str, request: pytest.FixtureRequest) -> Any:
    """The test's store (both databases), built after the environment points at the sandbox.

    In this process the store (and every engine built on it) reads the sandbox's clock directly:
    the HTTP-polling SandboxFollowingClock caches its offset for half a second, which would hide a
    ``sandbox.advance`` made just before a call. Child processes use PERMATOKEN_CLOCK=sandbox.
    """
    store = request.getfixturevalue("store")
    store.clock = StateClock(sandbox.state)
    return store


@pytest.fixture
def engine(world: Any, request: pytest.FixtureRequest) -> Iterator[RenewalEngine]:
    from permatoken.service import build_engine

    eng = build_engine(request.getfixturevalue("settings"), world)
    try:
        yield eng
    finally:
        eng.close()


AddCredential = Callable[..., AddResult]


@pytest.fixture
def add(world: Any, sandbox: Sandbox, request: pytest.FixtureRequest) -> AddCredential:
    """``add(name, token, issuer=…, options=…, secrets=…)``: onboard a credential in-process."""
    settings = request.getfixturevalue("settings")

    def run(
        name: str,
        token: str | None,
        *,
        issuer: str = "meta-system-refresh",
        app_id: str | None = None,
        app_secret: str | None = None,
        options: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        policy: dict[str, Any] | None = None,
        meta: bool = True,
    ) -> AddResult:
        """``meta=False`` for tokens that are not Meta's (oauth2-refresh, login): no app."""
        app = sandbox.app
        spec = NewCredential(
            name=name,
            issuer=issuer,
            app_id=(app_id or app["id"]) if meta else None,
            options=options or {},
            policy=policy or {},
        )
        return add_credential(
            settings,
            world,
            spec,
            Secret(token) if token is not None else None,
            secrets={k: Secret(v) for k, v in (secrets or {}).items()},
            app_secret=Secret(app_secret or app["secret"]) if meta else None,
        )

    return run
