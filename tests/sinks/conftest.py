"""Fixtures for the sink tests: a real moto server, and the renewal tests' live sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from _moto import MotoServer, aws_env, moto_fixture
from rotation.conftest import add, engine, live_sandbox, sandbox, world  # noqa: F401


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    yield from moto_fixture(tmp_path_factory)


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A freshly reset moto, named by the standard AWS environment of this test."""
    return aws_env(moto_server, monkeypatch)


@pytest.fixture
def onboarded(add: Any, sandbox: Any, emitted: Any) -> str:  # noqa: F811
    """A 60-day system-user token from the sandbox, as version 1 of ``acme/messaging``."""
    token = sandbox.token("system_user_60d")
    emitted.watch(token, sandbox.app["secret"])
    add("acme/messaging", token)
    return str(token)


@pytest.fixture(autouse=True)
def _watched_values_in_every_phase(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """The root ``emitted`` fixture checks watched values against the log records of its own
    teardown phase only (``caplog.records``); here the setup and call phases are checked too."""
    if "emitted" not in request.fixturenames:
        yield
        return
    em = request.getfixturevalue("emitted")  # set up first, so torn down after this check
    yield
    watched = em.watched
    for when in ("setup", "call"):
        for rec in caplog.get_records(when):
            text = rec.getMessage()
            found = [v for v in watched if v in text]
            assert not found, f"a watched secret appeared in log {rec.name} ({when})"
