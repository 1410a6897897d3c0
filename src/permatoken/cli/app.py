"""The Typer application, global options and shared helpers for command modules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .._exceptions import InputError
from .._secret import Secret
from ..models import validate_token_value
from ..settings import Settings, load_settings

app = typer.Typer(
    name="permatoken",
    help="Keeps WhatsApp Business Platform API tokens alive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
keys_app = typer.Typer(
    help="Key-encryption keys (rotate, status) and broker API keys.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

# Piped output is read by people too (CI logs, `| less`): don't squeeze tables to 80 columns.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class State:
    """Global options, turned into settings on first use (never at import time)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self.overrides)
        return self._settings

    def open_store(self, *, check_schema: bool = True) -> Any:
        from ..store import open_store

        return open_store(self.settings, check_schema=check_schema)


@app.callback()
def _global(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Data directory (PERMATOKEN_HOME).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Database URL (PERMATOKEN_DATABASE_URL).", show_default=False
        ),
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Key file (PERMATOKEN_KEY_FILE).")
    ] = None,
) -> None:
    ctx.obj = State({"home": home, "database_url": database_url, "key_file": key_file})


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_token(token_file: Path | None, from_env: str | None, *, what: str = "token") -> Secret:
    """Read a secret from exactly one of: a file (``-`` is stdin), an environment variable, stdin."""
    if token_file is not None and from_env is not None:
        raise InputError("give either --token-file or --from-env, not both")
    if from_env is not None:
        if from_env not in os.environ:
            raise InputError(f"environment variable {from_env} is not set")
        return validate_token_value(os.environ[from_env], what=f"{what} from ${from_env}")
    if token_file is not None and str(token_file) != "-":
        try:
            if token_file.stat().st_size > 64 * 1024:
                raise InputError(f"{token_file} is larger than 64 KiB; it is not a token file")
            raw = token_file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {token_file}: {exc.strerror}") from None
        return validate_token_value(_decode(raw, str(token_file)), what=f"{what} in {token_file}")
    if sys.stdin is None or (sys.stdin.isatty() and token_file is None):
        import getpass

        return validate_token_value(getpass.getpass(f"{what} (input hidden): "), what=what)
    raw = (
        sys.stdin.buffer.read(64 * 1024 + 1)
        if hasattr(sys.stdin, "buffer")
        else sys.stdin.read(64 * 1024 + 1).encode()
    )
    if len(raw) > 64 * 1024:
        raise InputError(f"{what} on stdin is larger than 64 KiB; it is not a token")
    return validate_token_value(_decode(raw, "stdin"), what=f"{what} on stdin")


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the value in {where} is not text; tokens are printable ASCII") from None


REFUSE_ARGV = (
    "refusing a secret given on the command line: it would be visible in `ps` and your shell "
    "history. Pipe it on stdin, or use --token-file FILE or --from-env VAR"
)
