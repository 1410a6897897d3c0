"""`make demo` keeps working: the demo script runs end to end against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_service_against_the_sandbox(tmp_path: Path) -> None:
    """The demo starts the sandbox, adds tokens with verdicts and serves the API (short run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")}
    proc = subprocess.run(
        [sys.executable, "-m", "permatoken.demo", "--duration", "3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "60-day system-user token, expires in 3 min" in out
    assert "System-user token, never expires, valid" in out
    assert "Dashboard/user token: expires in 5 min" in out
    assert "permatoken serving on http://127.0.0.1:" in out
    assert "demo admin key: pt_" in out
    assert "Traceback" not in out + proc.stderr
