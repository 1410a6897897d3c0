"""The ``permatoken`` command: a thin layer over the library.

Errors are :class:`~permatoken.PermatokenError` subclasses; :func:`main` prints them as
``error: …`` plus a hint and exits with the code in :data:`EXIT_CODES` (never a traceback); the
table itself is in :mod:`permatoken.cli.exit_codes`.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any

import typer

from .._exceptions import PermatokenError
from .._secret import redact
from .app import app, build_command, err_console

# The table lives in cli/exit_codes.py so that command modules can use it without importing this
# package (which imports them); `from permatoken.cli import EXIT_CODES, exit_code_for` still works.
from .exit_codes import EXIT_CODES as EXIT_CODES
from .exit_codes import INTERNAL_ERROR, INTERRUPTED, exit_code_for

# Typer >= 0.2x vendors click (typer._click) and no longer depends on it; older versions use
# click itself. typer.BadParameter exists in both, and its bases include the right
# ClickException (usage errors, unknown commands, bad option values).
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _import_commands() -> None:
    from . import (  # noqa: F401
        apikeys,
        apps,
        audit,
        backup,
        credentials,
        delivery,
        keys,
        maintenance,
        onboard,
        policy,
        providers,
        rotation,
        serve,
        sinks,
    )


class _CtrlC:
    """Notes a Ctrl-C before Click sees it: Click turns it into ``Exit(130)`` (or ``Abort``,
    depending on the version) and says nothing, so :func:`main` says "interrupted" itself."""

    def __init__(self) -> None:
        self.seen = False
        self.previous: Any = None

    def __enter__(self) -> _CtrlC:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (also calls sys.exit)."""
    _import_commands()
    command = build_command(app)
    ctrl_c = _CtrlC()
    try:
        with ctrl_c:
            # Without standalone mode click *returns* the code of a ``typer.Exit``.
            result = command.main(args=argv, prog_name="permatoken", standalone_mode=False)
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        if ctrl_c.seen:
            err_console.print("interrupted")
            code = INTERRUPTED
    except PermatokenError as exc:
        from rich.markup import escape

        # Messages quote user input (names, paths): escape it so Rich never parses it as markup.
        err_console.print(
            f"[bold red]error:[/] {escape(redact(exc.message))}", highlight=False, markup=True
        )
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {escape(redact(exc.hint))}", highlight=False)
        code = exit_code_for(exc)
    except typer.Abort:
        # A "no" at a confirmation prompt, or (older Click) Ctrl-C inside a command.
        err_console.print("interrupted" if ctrl_c.seen else "aborted")
        code = INTERRUPTED if ctrl_c.seen else 1
    except typer.Exit as exc:
        code = exc.exit_code
    except _ClickException as exc:
        exc.show(file=sys.stderr)  # type: ignore[attr-defined]
        code = exc.exit_code  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        err_console.print("interrupted")
        code = INTERRUPTED
    except Exception as exc:
        if os.environ.get("PERMATOKEN_DEBUG") == "1":
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}; this is a bug in permatoken. "
            "Re-run with PERMATOKEN_DEBUG=1 for a traceback (it may contain secrets).",
            highlight=False,
        )
        code = INTERNAL_ERROR
    if argv is None:
        # The process ends here. Python's shutdown garbage-collects every object the libraries
        # built at import (SQLAlchemy, pydantic): measured ~150 ms, a third of `permatoken
        # status`. Frozen objects are not scanned. What that skips is only the finalizers of
        # unreachable cycles, which Python never promises to run at exit; atexit hooks,
        # weakref.finalize callbacks and the flushing of stdout/stderr all still run.
        gc.freeze()
        sys.exit(code)
    return code
