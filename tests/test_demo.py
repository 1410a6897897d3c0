"""`make demo` keeps working: the demo script runs end to end against the sandbox."""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest


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
    assert re.search(r"dashboard: +http://127\.0\.0\.1:\d+/ui/ ", out), out[-2000:]
    assert "Traceback" not in out + proc.stderr


REPO = Path(__file__).resolve().parents[1]


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    """Lines of ``proc``'s stdout up to the one containing ``marker`` (read on a thread)."""
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                found.set()
        found.set()  # end of output: let the waiter look at what came

    threading.Thread(target=pump, daemon=True).start()
    assert found.wait(timeout), "".join(lines)[-3000:]
    assert any(marker in line for line in lines), "".join(lines)[-3000:]
    return lines


def test_ctrl_c_on_make_demo_ends_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while the service runs: no 'demo step failed', no make error line, no traceback,
    and the sandbox and the service are gone. Meanwhile a second shell can use the printed
    environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")}
    env["PYTHONUNBUFFERED"] = "1"
    make = [
        *("make", "--no-print-directory", "-f", str(REPO / "Makefile")),
        *("-o", ".venv/.installed", "demo", f"BIN={Path(sys.executable).parent}"),
    ]
    proc = subprocess.Popen(
        make,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        lines = _read_until(proc, "Watching for renewals", timeout=240)
        text = "".join(lines)
        exports = re.search(r"^\s*export (PERMATOKEN_HOME=.*)$", text, re.M)
        assert exports, text[-3000:]
        second = dict(env)
        second.update(dict(pair.split("=", 1) for pair in shlex.split(exports.group(1))))
        status = subprocess.run(
            [sys.executable, "-m", "permatoken", "status", "--json"],
            env=second,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert "demo/messaging" in status.stdout
        api = re.search(r"^API: (http://127\.0\.0\.1:\d+)", text, re.M)
        assert api, text[-3000:]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Say what the demo printed: without it a hang here cannot be told apart.
            pytest.fail("make demo did not end within 120 s of Ctrl-C:\n" + "".join(lines)[-3000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(lines)
    assert proc.returncode in (0, -signal.SIGINT), out[-3000:]
    assert "make: ***" not in out and "demo step failed" not in out, out[-3000:]
    assert "Traceback" not in out
    assert "stopping (Ctrl-C)" in out or "stopped (Ctrl-C)" in out, out[-3000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(api.group(1) + "/healthz", timeout=5)


def test_demo_notices_are_printed_whole() -> None:
    """A notice is printed with every line of its body (the instruction comes last)."""
    from permatoken.demo import _NoticeReceiver

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoticeReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = "Credential demo/dashboard version 1 expired at 2026-01-01T00:00:00Z. " * 4
    body += "\nGet a new token: `permatoken rotate demo/dashboard --token-file FILE`."
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            r = httpx.post(
                f"http://127.0.0.1:{server.server_address[1]}/notices",
                json={"title": "[permatoken] demo/dashboard has expired", "message": body},
            )
    finally:
        server.shutdown()
        server.server_close()
    assert r.status_code == 200
    printed = out.getvalue()
    assert "[permatoken] demo/dashboard has expired" in printed
    assert "permatoken rotate demo/dashboard --token-file FILE" in printed
    assert printed.count("expired at 2026-01-01T00:00:00Z") == 4
