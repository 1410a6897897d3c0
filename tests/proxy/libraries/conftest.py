"""Real processes: a sandbox process, ``permatoken serve`` (scheduler off) in another, and the
library under test in this one (or in Node). The world is ``client._support``'s: a mintable
``acme/messaging`` credential in a SQLite store, and an app key granted ``acme/*``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client._broker import Broker
from client._support import MINT, NAME, SEND, World
from client.conftest import (  # noqa: F401  (the SDK tests' process world)
    anyio_backend,
    api_key,
    sandbox,
    sandbox_config,
    store,
    world,
)

__all__ = ["MINT", "NAME", "SEND", "Serve"]


class Serve(Broker):
    """``permatoken serve --no-scheduler --access-log``; its output goes to a file, to scan."""

    def base_url(self, name: str = NAME) -> str:
        return f"{self.url}/graph/{name}/-"


@pytest.fixture
def serve_env() -> dict[str, str]:
    """Override to set PERMATOKEN_PROXY__* for the serve process."""
    return {}


@pytest.fixture
def serve(
    world: World,  # noqa: F811
    tmp_path: Path,
    serve_env: dict[str, str],
    api_key: str,  # noqa: F811
    emitted: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Serve]:
    for key, value in serve_env.items():
        monkeypatch.setenv(key, value)
    s = Serve("--access-log", out=tmp_path / "serve.log").start()
    try:
        yield s
    finally:
        s.stop()
        emitted.add("permatoken serve output", s.output())
        emitted.watch(api_key, world.token)


def exactly_once(w: World, texts: list[str]) -> None:
    """Each text accepted once, one mint, and Meta saw: ok, the dead token, ok (retried)."""
    assert w.sandbox.accepted_bodies() == texts
    assert w.sandbox.mints() == 1
    assert [c["error_code"] for c in w.sandbox.calls(SEND)] == [None, 190, None]


@pytest.fixture(autouse=True)
def _quiet_client_libraries() -> Iterator[None]:
    """The application's own HTTP library (urllib3 under requests) logs its request lines, with
    the permatoken key the application itself holds in ``?access_token=``, at DEBUG in the test
    process. That is the application's logging of its own credential, not something permatoken
    emits; what ``serve`` emits is still scanned for the key and the tokens."""
    logger = logging.getLogger("urllib3")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
