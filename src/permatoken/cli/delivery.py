"""exec and render: hand tokens to programs that know nothing about permatoken."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from .._exceptions import InputError
from .app import app, err_console, state

BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="PERMATOKEN_BROKER_URL",
        help="Broker URL; without it the local store is used.",
    ),
]
KeyEnvOpt = Annotated[
    str,
    typer.Option(
        "--api-key-env",
        help="Environment variable holding the broker API key (never pass it as an argument).",
    ),
]


def _sources(
    ctx: typer.Context, names: list[str], broker: str | None, api_key_env: str, stack: ExitStack
) -> dict[str, Any]:
    """One token source per distinct credential name (broker mode, or the local store)."""
    from ..client import TokenSource

    opened: dict[str, Any] = {}
    if broker:
        key = os.environ.get(api_key_env)
        if not key:
            raise InputError(
                f"--broker needs an API key in ${api_key_env}",
                hint="export it, or name another variable with --api-key-env",
            )
        for name in dict.fromkeys(names):
            opened[name] = stack.enter_context(TokenSource.from_broker(broker, key, name))
        return opened
    from ..service import build_engine

    settings = state(ctx).settings
    store = state(ctx).open_store()
    stack.callback(store.close)
    engine = build_engine(settings, store)
    stack.callback(engine.close)
    for name in dict.fromkeys(names):
        opened[name] = stack.enter_context(
            TokenSource.embedded(name, settings, store=store, engine=engine)
        )
    return opened


def _parse_env(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        var, sep, name = pair.partition("=")
        if not sep or not var or not name or not var.replace("_", "").isalnum() or var[0].isdigit():
            raise InputError(
                f"--env {pair!r}: use VAR=CREDENTIAL, e.g. --env WHATSAPP_TOKEN=acme/messaging"
            )
        mapping[var] = name
    return mapping


@app.command(
    "exec",
    context_settings={"allow_interspersed_args": False},
)
def exec_command(
    ctx: typer.Context,
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="COMMAND", help="The command and its arguments, after `--`.", show_default=False
        ),
    ],
    env: Annotated[
        list[str], typer.Option("--env", help="VAR=CREDENTIAL (repeatable).", show_default=False)
    ],
    on_rotate: Annotated[
        str, typer.Option(help="restart, signal:NAME (e.g. signal:HUP) or none.")
    ] = "restart",
    grace: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL on restart.")
    ] = 10.0,
    broker: BrokerOpt = None,
    api_key_env: KeyEnvOpt = "PERMATOKEN_API_KEY",
) -> None:
    """Run COMMAND with tokens in its environment; restart or signal it on every rotation.

    Example:

    \b
        permatoken exec --env WHATSAPP_TOKEN=acme/messaging -- python app.py

    The exit status is the command's (128+N if signal N ended it).
    """
    from ..client.delivery import Supervisor, parse_on_rotate

    mapping = _parse_env(env)
    policy = parse_on_rotate(on_rotate)
    with ExitStack() as stack:
        sources = _sources(ctx, list(mapping.values()), broker, api_key_env, stack)
        supervisor = Supervisor(
            command,
            {var: sources[name] for var, name in mapping.items()},
            on_rotate=policy,
            grace=grace,
            drop_env=[api_key_env],
        )
        code = supervisor.run()
    raise typer.Exit(code)


@app.command()
def render(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Credential name, e.g. acme/messaging.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="File to write (mode 0600, replaced atomically).")
    ],
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running and rewrite the file on every rotation.")
    ] = False,
    broker: BrokerOpt = None,
    api_key_env: KeyEnvOpt = "PERMATOKEN_API_KEY",
) -> None:
    """Write the current token of NAME to a file, atomically; with --watch, on every rotation."""
    from ..client.delivery import FileSink

    sink = FileSink(out)
    lock = threading.Lock()
    written = [0]

    def write(token: Any) -> None:
        with lock:  # the watcher thread and this one may race; never go back a version
            if token.version > written[0]:
                sink.write(token)
                written[0] = token.version

    with ExitStack() as stack:
        source = _sources(ctx, [name], broker, api_key_env, stack)[name]
        if watch:
            source.on_change(write)
        write(source.current())
        if not watch:
            err_console.print(f"wrote {name} version {source.current().version} to {out}")
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        err_console.print(
            f"writing {name} to {out} on every rotation (version {source.current().version} now)"
        )
        while not stop.wait(0.5):
            pass
