"""Fixtures: a sandbox server and a permatoken store sharing one clock (tests/notify uses them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _live_sandbox import StateClock, ThreadSandbox
from permatoken.sandbox import SandboxConfig
from permatoken.settings import Settings
from permatoken.store import Store, open_store

from .world import World, make_state


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Override in a module to change the sandbox's behaviour."""
    return SandboxConfig()


@pytest.fixture
def world(settings: Settings, sandbox_config: SandboxConfig) -> Iterator[World]:
    state = make_state(sandbox_config)
    clock = StateClock(state)
    with ThreadSandbox(state) as sandbox:
        store: Store = open_store(settings, clock=clock)
        w = World(state, sandbox, settings, store, clock)
        try:
            yield w
        finally:
            w.close()
            store.close()
