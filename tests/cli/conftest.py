"""A live sandbox for the CLI tests that talk to Meta (the same helpers as the renewal tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _live_sandbox import ThreadSandbox
from rotation._live import Sandbox, live_sandbox_fixture, sandbox_fixture


@pytest.fixture(scope="session")
def live_sandbox() -> Iterator[ThreadSandbox]:
    yield from live_sandbox_fixture()


@pytest.fixture
def sandbox(live_sandbox: ThreadSandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox_fixture(live_sandbox, monkeypatch)
