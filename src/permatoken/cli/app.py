"""The Typer application, global options and shared helpers for command modules.

Command modules are imported for every invocation (``--help`` lists them all), so at module
level they import only Typer and permatoken's light modules; Rich, settings (pydantic),
SQLAlchemy and httpx are imported inside the commands that use them (``bench/bench_startup.py``).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from typer.core import TyperCommand, TyperGroup

from .._exceptions import InputError, ListenError

if TYPE_CHECKING:
    from rich.console import Console

    from .._secret import Secret
    from ..settings import Settings


def sub_app(help: str) -> typer.Typer:
    """A command group; plain help text like the top level (Rich is not loaded for --help)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


#: The order of `permatoken --help`: the way a user meets the commands.
COMMAND_ORDER = (
    "init",
    "add",
    "update",
    "status",
    "list",
    "get",
    "inspect",
    "rotate",
    "revoke",
    "remove",
    "serve",
    "exec",
    "render",
    "app",
    "keys",
    "policy",
    "audit",
    "doctor",
    "sandbox",
)


class Group(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        # The names alone: Typer's list_commands reads .items(), which would build every command.
        return sorted(self.commands, key=lambda n: rank.get(n, len(rank)))


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands, each turned into a Click command when first looked up.

    Typer builds every command up front, reading each function's signature and type hints:
    for the ~40 commands that costs more than `status` spends reading the store. The names are
    known without building; `--help` builds them all anyway (it shows their short help).
    """

    def __init__(self, builders: dict[str, Callable[[], Any]]) -> None:
        self._builders = builders
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._builders[name]()  # KeyError: no such command
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._builders[name] = lambda: command
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._builders[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)

    def built(self) -> list[str]:
        """The names built so far, in the order they were."""
        return list(self._built)


def build_command(typer_app: typer.Typer) -> Any:
    """``typer.main.get_command(typer_app)``, its subcommands and groups built on first use."""
    from typer.main import (
        get_command,
        get_command_from_info,
        get_command_name,
        get_group_from_info,
        solve_typer_info_defaults,
    )

    shell = copy.copy(typer_app)  # the group itself: callback and global options, no commands
    shell.registered_commands = []
    shell.registered_groups = []
    group = get_command(shell)
    assert isinstance(group, TyperGroup)
    short, markup = typer_app.pretty_exceptions_short, typer_app.rich_markup_mode
    builders: dict[str, Callable[[], Any]] = {}
    # Same names, same order and same precedence (the last one registered wins) as Typer's.
    for info in typer_app.registered_commands:
        assert info.callback is not None
        name = info.name or get_command_name(info.callback.__name__)
        builders[name] = functools.partial(
            get_command_from_info, info, pretty_exceptions_short=short, rich_markup_mode=markup
        )
    for group_info in typer_app.registered_groups:
        build = functools.partial(
            get_group_from_info,
            group_info,
            pretty_exceptions_short=short,
            suggest_commands=typer_app.suggest_commands,
            rich_markup_mode=markup,
        )
        group_name = solve_typer_info_defaults(group_info).name
        if group_name:
            builders[group_name] = build
        else:  # a group added without a name lends its commands to this one
            for sub_name, sub in build().commands.items():
                builders[sub_name] = functools.partial(lambda c: c, sub)
    group.commands = LazyCommands(builders)
    return group


app = typer.Typer(
    cls=Group,
    name="permatoken",
    help="Keeps WhatsApp Business Platform API tokens alive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
keys_app = sub_app("Key-encryption keys (rotate, status) and broker API keys.")
app.add_typer(keys_app, name="keys")


class Command(TyperCommand):
    """A command whose usage line leaves out hidden parameters (the argv-secret traps)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not getattr(param, "hidden", False):
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class _LazyConsole:
    """A Rich console created on first use: importing Rich costs more than `--help` itself."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def real(self) -> Any:
        if self._console is None:
            from rich.console import Console

            options = dict(self._options)
            if options.pop("wide_when_piped", False):
                # Piped output is read by people too (CI logs, `| less`): don't squeeze tables.
                options["width"] = None if sys.stdout.isatty() else 160
            self._console = Console(**options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def rich_console(lazy: Console) -> Console:
    """The Rich console behind ``console``/``err_console``, for Rich APIs that take one."""
    return cast("Console", lazy.real()) if isinstance(lazy, _LazyConsole) else lazy


console = cast("Console", _LazyConsole(highlight=False, soft_wrap=True, wide_when_piped=True))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


class State:
    """Global options, turned into settings on first use (never at import time)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from ..settings import load_settings

            self._settings = load_settings(**self.overrides)
        return self._settings

    def open_store(self, *, check_schema: bool = True) -> Any:
        from ..store import open_store

        return open_store(self.settings, check_schema=check_schema)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("permatoken")
        except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
            number = "unknown (not installed)"
        sys.stdout.write(f"permatoken {number}\n")
        raise typer.Exit()


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
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
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
    from ..models import validate_token_value

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


#: How to retry each listening command elsewhere (spelled out so tests can check every hint).
_ELSEWHERE = {
    "serve": ("`permatoken serve --port N`", "`permatoken serve --host 127.0.0.1`"),
    "sandbox": ("`permatoken sandbox --port N`", "`permatoken sandbox --host 127.0.0.1`"),
}


def listen_error(exc: OSError, command: str, host: str, port: int) -> ListenError:
    """What to tell a user whose ``serve``/``sandbox`` cannot bind ``host:port``."""
    import errno
    import socket

    other_port, other_host = _ELSEWHERE[command]
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ListenError(
            f"cannot listen on {where}: the port is already in use by another process",
            hint=f"choose another port with {other_port} (0 picks a free one), "
            f"or stop the process that listens on port {port}",
            host=host,
            port=port,
        )
    if exc.errno == errno.EACCES:
        return ListenError(
            f"cannot listen on {where}: permission denied (ports below 1024 need privileges)",
            hint=f"choose a port above 1024 with {other_port}",
            host=host,
            port=port,
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return ListenError(
            f"cannot listen on {where}: {host} is not an address of this machine",
            hint=f"use {other_host} (or 0.0.0.0 for every interface)",
            host=host,
            port=port,
        )
    return ListenError(f"cannot listen on {where}: {exc.strerror or exc}", host=host, port=port)
