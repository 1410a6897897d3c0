"""A real moto server (AWS KMS and Secrets Manager imitated over HTTP) in a child process.

:class:`MotoServer` starts ``moto_server`` on a free loopback port and can be killed and started
again on the same port (an AWS outage); :func:`aws_env` points this process and its children at
it (``AWS_ENDPOINT_URL``, region, dummy credentials), resets moto and forgets boto3 clients.
moto keeps its state in memory: a restarted server starts empty.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from _live_sandbox import _running, loopback_socket


class MotoServer:
    def __init__(self, log_dir: Path) -> None:
        sock = loopback_socket()
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        exe = Path(sys.executable).parent / "moto_server"
        self.starts += 1
        log = open(self.log_dir / f"moto-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "false"},
        )
        log.close()
        _running.add(self)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.logs()}")
            try:
                if httpx.get(f"{self.url}/moto-api/", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """Stop it dead (SIGKILL): connections are refused until :meth:`start`."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None
        _running.discard(self)

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def logs(self) -> str:
        """Everything moto printed (its request log included), across restarts."""
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.glob("moto-*.log"))
        )


def moto_fixture(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


def aws_env(server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """This test talks to a freshly reset moto, through the standard AWS environment."""
    from permatoken import aws

    if server.proc is None:
        server.start()
    server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for key in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    aws.reset_clients()
    return server


def boto(service: str) -> Any:
    """A plain boto3 client, to read back what permatoken wrote (the environment says where)."""
    import boto3

    return boto3.client(service)
