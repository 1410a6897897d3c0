"""``python -m permatoken.sandbox`` as a real process: start-up lines, fixtures file, answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_module_starts_prints_two_lines_writes_fixtures_and_answers(tmp_path: Path) -> None:
    fixtures = tmp_path / "out" / "fixtures.json"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "permatoken.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--fixtures-out",
            str(fixtures),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        assert first.startswith("sandbox listening on http://127.0.0.1:"), first
        assert second == f"fixtures written to {fixtures}"
        url = first.removeprefix("sandbox listening on ")
        data = json.loads(fixtures.read_text())
        assert data["graph_url"] == url and data["graph_version"] == "v25.0"
        assert oct(fixtures.stat().st_mode & 0o777) == "0o600"
        token = data["tokens"]["system_user"]["value"]
        with httpx.Client(base_url=url, timeout=5) as client:
            r = client.get("/v25.0/me", headers={"Authorization": f"Bearer {token}"})
            ready = time.perf_counter() - started
            assert r.status_code == 200
            assert client.get("/_sandbox/openapi.json").status_code == 200
        # Recorded, not asserted: wall-clock limits make flaky tests.
        print(f"\nsandbox start-up to first answer: {ready:.3f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not [p for p in fixtures.parent.iterdir() if p.name.endswith(".tmp")]


def test_fixtures_file_shape(tmp_path: Path) -> None:
    from permatoken.sandbox import SandboxState
    from permatoken.sandbox.server import write_fixtures

    state = SandboxState()
    path = tmp_path / "f.json"
    write_fixtures(path, state.seed())
    data = json.loads(path.read_text())
    assert set(data) == {
        "graph_url",
        "graph_version",
        "apps",
        "businesses",
        "system_users",
        "wabas",
        "phone_numbers",
        "tokens",
        "providers",
        "installations",
        "subscriptions",
    }
    assert {"id", "secret", "name", "require_app_secret"} <= set(data["apps"][0])
    assert len(data["apps"]) == 2 and len(data["businesses"]) == 2
    assert any(b["requires_expiring_tokens"] for b in data["businesses"])
    assert len(data["wabas"]) == 2 and len(data["phone_numbers"]) == 2
    for token in data["tokens"].values():
        assert {
            "value",
            "type",
            "kind",
            "expires_at",
            "app_id",
            "system_user_id",
            "business_id",
            "scopes",
            "waba_ids",
        } <= set(token)
        assert isinstance(token["expires_at"], int)
    assert set(data["providers"]["login"]) == {"url_path", "username", "password"}
    assert set(data["providers"]["oauth2"]) == {
        "token_url_path",
        "client_id",
        "client_secret",
        "refresh_token",
    }
