"""`permatoken serve` as a real child process: start it, talk to it, kill it, read what it said."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

import httpx

_BANNER = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


class Serve:
    """``python -m permatoken serve --port 0 ARGS`` with ``env`` added to this environment.

    Output goes to a temporary file (a pipe nobody reads would fill up and block the child);
    :meth:`output` reads it. Use as a context manager: the child never outlives the test.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = ["serve", "--port", "0", *args]
        self.env = dict(os.environ) | {"NO_COLOR": "1", "COLUMNS": "200"} | (env or {})
        self._log: IO[bytes] = tempfile.TemporaryFile()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "permatoken", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        return self.proc

    def start(self, *, timeout: float = 60) -> Serve:
        """Start and wait for the banner (printed after start-up checks and resuming)."""
        proc = self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = _BANNER.search(self.output())
            if m:
                self.url = m.group(1)
                return self
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"serve did not start within {timeout} s:\n{self.output()}")

    def run_to_exit(self, *, timeout: float = 60) -> int:
        """Start expecting the process to stop by itself (a refused start-up); its exit code."""
        return self._spawn().wait(timeout=timeout)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 60, what: str = "the condition"
) -> Any:
    """Poll ``condition`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
