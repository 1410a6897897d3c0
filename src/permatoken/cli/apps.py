"""app add / app list / app update: Meta apps whose secret permatoken keeps (encrypted)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .._exceptions import AlreadyExistsError, InputError, NotFoundError
from .app import REFUSE_ARGV, Command, app, console, print_json, read_token, state, sub_app

if TYPE_CHECKING:
    from .._secret import Secret

app_app = sub_app("Meta apps (id + secret) used to inspect, refresh and mint tokens.")
app.add_typer(app_app, name="app")


def read_app_secret(secret_file: Path | None, secret_env: str | None) -> Secret | None:
    if secret_file is None and secret_env is None:
        return None
    return read_token(secret_file, secret_env, what="app secret")


@app_app.command("add", cls=Command)
def add(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="APP_ID", help="The Meta app id.")],
    secret_arg: Annotated[str | None, typer.Argument(hidden=True, show_default=False)] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help="File holding the app secret ('-' = stdin)."),
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option("--secret-env", help="Environment variable holding the app secret."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label.")] = None,
    require_app_secret: Annotated[
        bool,
        typer.Option(
            "--require-app-secret/--no-require-app-secret",
            help="The app has 'Require App Secret' on.",
        ),
    ] = False,
) -> None:
    """Register a Meta app and its secret (read from a file, stdin or the environment)."""
    if secret_arg is not None:
        raise InputError(REFUSE_ARGV)
    secret = (
        read_app_secret(secret_file or Path("-"), secret_env)
        if secret_env is None
        else read_app_secret(None, secret_env)
    )
    store = state(ctx).open_store()
    try:
        try:
            store.get_app(app_id)
        except NotFoundError:
            pass
        else:  # replacing a secret that other credentials rely on is `app update`'s job
            raise AlreadyExistsError(
                f"app {app_id} is already registered; nothing was changed",
                hint=f"to change its secret run `permatoken app update {app_id} --secret-file FILE`",
                app_id=app_id,
            )
        a = store.put_app(
            app_id, secret, name=name, require_app_secret=require_app_secret, actor="cli"
        )
    finally:
        store.close()
    console.print(f"app {a.id} registered")


@app_app.command("update")
def update(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="APP_ID")],
    secret_file: Annotated[Path | None, typer.Option("--secret-file")] = None,
    secret_env: Annotated[str | None, typer.Option("--secret-env")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    require_app_secret: Annotated[
        bool | None, typer.Option("--require-app-secret/--no-require-app-secret")
    ] = None,
) -> None:
    """Change an app's secret, label or 'Require App Secret' flag."""
    secret = read_app_secret(secret_file, secret_env)
    store = state(ctx).open_store()
    try:
        store.get_app(app_id)
        store.put_app(app_id, secret, name=name, require_app_secret=require_app_secret, actor="cli")
    finally:
        store.close()
    console.print(f"app {app_id} updated")


@app_app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered apps (never their secrets)."""
    from rich.table import Table

    store = state(ctx).open_store()
    try:
        apps = store.list_apps()
    finally:
        store.close()
    rows = [{"id": a.id, "name": a.name, "require_app_secret": a.require_app_secret} for a in apps]
    if as_json:
        print_json(rows)
        return
    table = Table(header_style="bold")
    for col in ("APP ID", "NAME", "REQUIRE APP SECRET"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["name"] or "", "yes" if r["require_app_secret"] else "no")
    console.print(table)
