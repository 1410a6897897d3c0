"""Delivery without code changes: a supervised child process with tokens in its environment,
and a file sink that writes the token atomically.

:class:`Supervisor` (``permatoken exec``) starts the command with each token in an environment
variable (never on its command line, so never in ``ps`` or ``/proc/<pid>/cmdline``), forwards
signals to it, returns its exit status (``128 + N`` when a signal N ended it), and on every
rotation restarts it (SIGTERM, then SIGKILL after ``grace`` seconds) or sends it a signal.

:class:`FileSink` (``permatoken render``) writes a temporary file in the target's directory
(created with mode 0600), fsyncs it, renames it over the target and fsyncs the directory: a
reader sees the old token or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import InputError
from .models import CachedToken

__all__ = ["FORWARDED_SIGNALS", "FileSink", "Supervisor", "exit_status", "parse_on_rotate"]

log = logging.getLogger(__name__)

FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def parse_on_rotate(value: str) -> signal.Signals | str:
    """``restart``, ``none`` or ``signal:NAME`` (``signal:HUP``, ``signal:SIGUSR1``) (pure)."""
    if value in ("restart", "none"):
        return value
    if value.startswith("signal:"):
        name = value.removeprefix("signal:").upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            return signal.Signals[name]
        except KeyError:
            pass
    raise InputError(f"--on-rotate {value!r}: use restart, none or signal:NAME (e.g. signal:HUP)")


def exit_status(returncode: int) -> int:
    """A shell-style exit status: the child's code, or 128 + N if signal N ended it (pure)."""
    return 128 - returncode if returncode < 0 else returncode


class FileSink:
    """Writes a token to ``path`` atomically with mode 0600 (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, mode: int = 0o600) -> None:
        self.path = Path(path)
        self.mode = mode
        if not self.path.parent.is_dir():
            raise InputError(
                f"cannot write {self.path}: directory {self.path.parent} does not exist"
            )

    def __repr__(self) -> str:
        return f"FileSink({str(self.path)!r})"

    def write(self, token: CachedToken) -> None:
        self.write_bytes(token.value.reveal().encode() + b"\n")
        log.info("wrote %s version %d to %s", token.name, token.version, self.path)

    def write_bytes(self, data: bytes) -> None:
        """Replace the file's content with ``data`` atomically (mode 0600 from the first byte)."""
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            os.fchmod(fd, self.mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class Supervisor:
    """Runs ``command`` with tokens from ``sources`` (env var → source) in its environment."""

    def __init__(
        self,
        command: Sequence[str],
        sources: Mapping[str, Any],
        *,
        on_rotate: signal.Signals | str = "restart",
        grace: float = 10.0,
        drop_env: Sequence[str] = (),
    ) -> None:
        if not command:
            raise InputError("no command given: permatoken exec --env VAR=NAME -- COMMAND [ARGS…]")
        self.command = list(command)
        self.sources = dict(sources)
        self.on_rotate = on_rotate
        self.grace = grace
        self.drop_env = set(drop_env)
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._rotated = threading.Event()
        self._wake = threading.Event()
        self._stopping = False
        for source in {id(s): s for s in self.sources.values()}.values():
            source.on_change(lambda _token: self._rotation())

    def _rotation(self) -> None:
        self._rotated.set()
        self._wake.set()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in self.drop_env}
        for var, source in self.sources.items():
            env[var] = source.current().value.reveal()
        return env

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            child = subprocess.Popen(self.command, env=self._environment())
        except OSError as exc:
            raise InputError(f"cannot start {self.command[0]!r}: {exc.strerror}") from None
        versions = ", ".join(
            f"{var}={s.current().name}@v{s.current().version}" for var, s in self.sources.items()
        )
        log.info("started %s (pid %d) with %s", self.command[0], child.pid, versions)
        return child

    def _forward(self, signum: int, _frame: Any) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self._stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)
        self._wake.set()

    def _stop_child(self, child: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        try:
            child.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.0f s; killing it", child.pid, self.grace)
            child.kill()
            child.wait()

    def _handle_rotation(self, child: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        if self.on_rotate == "none":
            return child
        if isinstance(self.on_rotate, signal.Signals):
            log.info("token rotated: sending %s to pid %d", self.on_rotate.name, child.pid)
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(self.on_rotate)
            return child
        log.info("token rotated: restarting pid %d", child.pid)
        self._stop_child(child)
        self.restarts += 1
        return self._start()

    def run(self) -> int:
        """Run until the child exits on its own or after a forwarded stop signal; its status."""
        previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED_SIGNALS}
        try:
            self.child = self._start()
            while True:
                code = self.child.poll()
                if code is not None:
                    return exit_status(code)
                if self._rotated.is_set() and not self._stopping:
                    self._rotated.clear()
                    self.child = self._handle_rotation(self.child)
                self._wake.wait(0.2)
                self._wake.clear()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            child = self.child
            if child is not None and child.poll() is None:
                self._stop_child(child)
