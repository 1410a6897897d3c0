"""`permatoken serve` in a subprocess on a free loopback port, with an app API key."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_key(*grants: str, role: str = "app") -> str:
    args = [sys.executable, "-m", "permatoken", "keys", "create", "--role", role, "--json"]
    for grant in grants:
        args += ["--grant", grant]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return str(json.loads(proc.stdout)["key"])


class Broker:
    """``permatoken serve --no-scheduler [ARGS]``; with ``out``, its stdout and stderr go there."""

    def __init__(self, *args: str, out: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out is not None else ""

    def start(self) -> Broker:
        command = [sys.executable, "-m", "permatoken", "serve", "--port", str(self.port)]
        sink = self.out.open("wb") if self.out is not None else None
        with contextlib.nullcontext() if sink is None else sink:
            self.proc = subprocess.Popen(
                [*command, "--no-scheduler", *self.args],
                stdout=subprocess.DEVNULL if sink is None else sink,
                stderr=subprocess.PIPE if sink is None else subprocess.STDOUT,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = self.proc.stderr.read().decode() if self.proc.stderr else self.output()
                raise RuntimeError(f"permatoken serve exited: {said[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("permatoken serve did not answer /healthz within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def storm(commands: list[list[str]], env: dict[str, str], go: Callable[[], object]) -> list[Any]:
    """Start one worker process per command, wait until each printed ``ready``, call ``go()``
    (e.g. revoke the token), release them all, and return each one's last line as JSON."""
    workers = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for command in commands
    ]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        go()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        reports = []
        for w in workers:
            out, err = w.communicate(timeout=240)
            assert w.returncode == 0, err[-2000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
