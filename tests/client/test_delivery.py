"""Delivery without code changes: `permatoken exec` and the atomic file sink."""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from permatoken._secret import Secret
from permatoken.client import CachedToken
from permatoken.client.delivery import FileSink, exit_status, parse_on_rotate

from ._support import NAME, World

CHILD = str(Path(__file__).parent / "_child.py")


def _exec(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "permatoken", "exec", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, NO_COLOR="1"),
    )


def _lines(log: Path, prefix: str, count: int, timeout: float = 15.0) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            line.split()
            for line in (log.read_text().splitlines() if log.exists() else [])
            if line.startswith(prefix)
        ]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(
        f"expected {count} {prefix!r} lines in {log}: {log.read_text() if log.exists() else ''}"
    )


def _rotate(world: World) -> int:
    from permatoken.service import build_engine
    from permatoken.store import open_store

    store = open_store(world.settings)
    engine = build_engine(world.settings, store)
    try:
        outcome = engine.rotate(NAME, force=True)
        assert outcome.status == "rotated", outcome
        return outcome.version or 0
    finally:
        engine.close()
        store.close()


def test_exec_puts_the_token_in_the_environment_and_propagates_the_exit_code(
    world: World, store: Any, tmp_path: Path
):
    """The child sees WHATSAPP_TOKEN; exec exits with the child's code."""
    log = tmp_path / "child.log"
    proc = _exec(
        "--env", f"WHATSAPP_TOKEN={NAME}", "--", sys.executable, CHILD, str(log), "exit", "7"
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, err.decode()
    [start] = _lines(log, "start", 1)
    assert start[2] == store.reveal(NAME).reveal()
    assert store.reveal(NAME).reveal() not in (out + err).decode()


def test_exec_restarts_the_child_on_rotation_and_forwards_sigterm(
    world: World, store: Any, tmp_path: Path
):
    """A rotation restarts the child with the new token; SIGTERM reaches it; the status is 128+15.

    While it runs, the token is in neither the child's nor exec's command line (/proc and ps).
    """
    log = tmp_path / "child.log"
    proc = _exec(
        "--env",
        f"WHATSAPP_TOKEN={NAME}",
        "--grace",
        "5",
        "--",
        sys.executable,
        CHILD,
        str(log),
        "sleep",
    )
    try:
        [first] = _lines(log, "start", 1)
        token = store.reveal(NAME).reveal()
        assert first[2] == token
        child_pid = int(first[1])
        for pid in (child_pid, proc.pid):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            assert (
                token not in cmdline
                and NAME in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
            )
        ps = subprocess.run(
            ["ps", "-eo", "pid,args", "ww"], capture_output=True, text=True, check=True
        ).stdout
        assert token not in ps and str(child_pid) in ps

        assert _rotate(world) == 2
        second = _lines(log, "start", 2)[1]
        assert second[2] == store.reveal(NAME).reveal() != token
        assert int(second[1]) != child_pid
        assert (
            not Path(f"/proc/{child_pid}").exists()
            or "zombie" in Path(f"/proc/{child_pid}/status").read_text()
        )

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.returncode == 128 + signal.SIGTERM
        assert not Path(f"/proc/{second[1]}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exec_signals_the_child_on_rotation_when_asked(world: World, store: Any, tmp_path: Path):
    """--on-rotate signal:HUP sends SIGHUP to the same child instead of restarting it."""
    log = tmp_path / "child.log"
    proc = _exec(
        "--env",
        f"WHATSAPP_TOKEN={NAME}",
        "--on-rotate",
        "signal:HUP",
        "--",
        sys.executable,
        CHILD,
        str(log),
        "sleep",
    )
    try:
        [first] = _lines(log, "start", 1)
        _rotate(world)
        [hup] = _lines(log, "hup", 1)
        assert hup[1] == first[1]
        # exec handles rotations one after the other: once the second HUP has arrived, a
        # restart caused by the first would have happened (and would have taken that HUP).
        _rotate(world)
        hups = _lines(log, "hup", 2)
        assert [h[1] for h in hups] == [first[1], first[1]]
        assert len(_lines(log, "start", 1)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM


def test_exec_refuses_bad_arguments_with_a_hint(world: World):
    proc = _exec("--env", "NOEQUALS", "--", "true")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"VAR=CREDENTIAL" in err
    proc = _exec("--env", "T=acme/messaging", "--on-rotate", "sometimes", "--", "true")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"signal:NAME" in err


def test_on_rotate_and_exit_status_parsing():
    assert parse_on_rotate("signal:HUP") is signal.SIGHUP
    assert parse_on_rotate("signal:sigusr1") is signal.SIGUSR1
    assert parse_on_rotate("restart") == "restart"
    assert exit_status(-15) == 143 and exit_status(3) == 3


def test_the_file_sink_never_exposes_a_partial_token(tmp_path: Path):
    """1,000 rewrites with tokens of very different lengths; a reader only sees whole ones."""
    path = tmp_path / "token"
    sink = FileSink(path)
    values = [secrets.token_urlsafe(20 + (i % 7) * 300) for i in range(1000)]
    sink.write(CachedToken("acme/messaging", 0, Secret(values[0])))
    known = set(values)
    bad: list[str] = []
    reads = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            text = path.read_text()
            reads += 1
            if not text.endswith("\n") or text[:-1] not in known:
                bad.append(text[:40])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i, value in enumerate(values):
            sink.write(CachedToken("acme/messaging", i, Secret(value)))
            if i % 100 == 0:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        done.set()
        thread.join()
    assert bad == [] and reads > 100
    assert path.read_text() == values[-1] + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]  # no temporary files left behind


def test_render_watch_rewrites_the_file_on_rotation(world: World, store: Any, tmp_path: Path):
    """`permatoken render NAME --out F --watch`: 0600, current token, rewritten on rotation."""
    out = tmp_path / "wa.token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "render", NAME, "--out", str(out), "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.read_text() == store.reveal(NAME).reveal() + "\n"
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        _rotate(world)
        new = store.reveal(NAME).reveal() + "\n"
        deadline = time.monotonic() + 5
        while out.read_text() != new and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.read_text() == new and stat.S_IMODE(out.stat().st_mode) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert store.reveal(NAME).reveal() not in err.decode()


def test_render_once_writes_and_exits(world: World, store: Any, tmp_path: Path):
    out = tmp_path / "once.token"
    proc = subprocess.run(
        [sys.executable, "-m", "permatoken", "render", NAME, "--out", str(out)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert out.read_text() == store.reveal(NAME).reveal() + "\n"


@pytest.mark.parametrize("name", ["acme/nothing"])
def test_render_of_an_unknown_credential_is_a_clear_error(world: World, tmp_path: Path, name: str):
    proc = subprocess.run(
        [sys.executable, "-m", "permatoken", "render", name, "--out", str(tmp_path / "x")],
        capture_output=True,
        timeout=60,
    )
    assert (
        proc.returncode == 3 and b"acme/nothing" in proc.stderr and b"Traceback" not in proc.stderr
    )
