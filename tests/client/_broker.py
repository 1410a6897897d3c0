"""`permatoken serve` in a subprocess on a free loopback port, with an app API key."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

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
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "permatoken",
                "serve",
                "--port",
                str(self.port),
                "--no-scheduler",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"permatoken serve exited: {self.proc.stderr.read().decode()[-2000:]}"
                )  # type: ignore[union-attr]
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
