"""A storm through the proxy: 4 client processes x 250 concurrent sends right after a revocation."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from client._broker import storm
from client._support import World

from .conftest import SEND, Serve

WORKER = str(Path(__file__).with_name("_storm_worker.py"))


@pytest.fixture
def serve_env() -> dict[str, str]:
    return {"PERMATOKEN_PROXY__MESSAGES_PER_SECOND": "0"}  # the sandbox's limits are lifted too


@pytest.mark.slow
def test_1000_sends_from_4_processes_after_a_revocation_renew_once_and_arrive_once(
    world: World, serve: Serve, api_key: str, store: Any
):
    """One upstream renewal; 1,000 accepted, each exactly once; none failed."""
    tags = [f"p{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
    commands = [[sys.executable, WORKER, serve.base_url(), world.phone_id, t, "250"] for t in tags]
    env = {**os.environ, "PT_KEY": api_key}
    reports = storm(commands, env, lambda: world.revoke_current(store))
    assert [r["errors"] for r in reports] == [[]] * 4
    assert [r["ok"] for r in reports] == [250] * 4
    assert world.sandbox.mints() == 1
    expected = sorted(f"{tag} {i}" for tag in tags for i in range(250))
    assert sorted(world.sandbox.accepted_bodies()) == expected  # no loss, no duplicate
    dead = [c for c in world.sandbox.calls(SEND) if c["error_code"] is not None]
    assert dead and {c["error_code"] for c in dead} == {190}
