"""Node's built-in ``fetch`` (Node 20) through ``permatoken serve``: a plain HTTP client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from client._support import World

from .conftest import Serve, exactly_once

SCRIPT = Path(__file__).with_name("send.mjs")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed; CI must run the Node recipe")
        pytest.skip("node is not installed")
    return node


def test_node_fetch(world: World, serve: Serve, api_key: str, store: Any):
    """fetch(BASE + '/v25.0/{phone}/messages', Authorization: Bearer KEY): exactly once, one mint."""
    node = _node()

    def send(text: str) -> dict[str, Any]:
        proc = subprocess.run(
            [node, str(SCRIPT), serve.base_url(), world.phone_id, text],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PT_KEY": api_key},
            check=True,
        )
        status, body = proc.stdout.splitlines()[:2]
        assert status == "200", body
        return json.loads(body)  # type: ignore[no-any-return]

    assert send("node before")["messages"][0]["id"]
    world.revoke_current(store)
    assert send("node after")["messages"][0]["id"]
    exactly_once(world, ["node before", "node after"])
