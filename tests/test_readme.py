"""The README's promises, run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _quickstart_code() -> str:
    text = README.read_text()
    m = re.search(r"<!-- quickstart:[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost its quick-start block"
    return m.group(1)


def test_readme_quickstart_sends_through_a_revocation(tmp_path: Path) -> None:
    """The README's Python quick start sends twice around a revocation: one mint, two messages."""
    fixtures = tmp_path / "fixtures.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PERMATOKEN_") or k == "PERMATOKEN_TEST_PG_URL"
    }
    env["PERMATOKEN_HOME"] = str(tmp_path / "home")
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "permatoken.sandbox",
            "--port",
            "0",
            "--fixtures-out",
            str(fixtures),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        line = sandbox.stdout.readline().decode()  # type: ignore[union-attr]
        url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while not fixtures.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        fx = json.loads(fixtures.read_text())
        env |= {"PERMATOKEN_GRAPH_URL": url, "PHONE_NUMBER_ID": fx["phone_numbers"][0]["id"]}
        app = fx["apps"][0]
        secret = tmp_path / "app-secret.txt"
        secret.write_text(app["secret"])

        def cli(*args: str, stdin: str | None = None) -> None:
            proc = subprocess.run(
                [sys.executable, "-m", "permatoken", *args],
                input=stdin,
                text=True,
                capture_output=True,
                env=env,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr

        cli("init")
        cli(
            "add",
            "acme/admin",
            "--app-id",
            app["id"],
            "--app-secret-file",
            str(secret),
            stdin=fx["tokens"]["system_user"]["value"],
        )
        cli(
            "add",
            "acme/messaging",
            "--issuer",
            "meta-system-mint",
            "--app-id",
            app["id"],
            "--obtain",
            "--option",
            f"system_user_id={fx['system_users'][0]['id']}",
            "--option",
            "admin_credential=acme/admin",
        )
        httpx.delete(url + "/_sandbox/calls")
        run = subprocess.run(
            [sys.executable, "-c", _quickstart_code()],
            text=True,
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.count("sent wamid.") == 2, run.stdout
        messages = httpx.get(url + "/_sandbox/messages").json()
        bodies = [json.dumps(m) for m in messages["data"]]
        assert sum("still sent, once" in b for b in bodies) == 1
        assert sum('"hello"' in b for b in bodies) == 1
        calls = httpx.get(url + "/_sandbox/calls").json()["data"]
        mints = [
            c
            for c in calls
            if c["method"] == "POST" and c["path"].endswith("/access_tokens") and c["status"] == 200
        ]
        assert len(mints) == 1
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


@pytest.mark.parametrize("command", ["make demo", "make test"])
def test_readme_shows_the_two_commands(command: str) -> None:
    assert command in README.read_text()
