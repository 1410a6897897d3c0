"""sink add NAME --to URL, sink list [NAME], sink remove NAME [--to URL] (docs/aws.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, console, print_json, state

sink_app = typer.Typer(
    help="Push each credential's current token where applications already read secrets: "
    "AWS Secrets Manager (aws-sm://SECRET-ID) or a file (file:///ABS/PATH).",
)
app.add_typer(sink_app, name="sink")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@sink_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The credential whose current token is pushed.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="aws-sm://SECRET-ID (JSON value; ?format=raw for the bare token) or "
            "file:///ABS/PATH (bare token; ?format=json for JSON).",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Deliver NAME's current token to URL now, then on every promotion (inside `serve`).

    The sink is saved only if this first delivery succeeds: a refusal changes nothing.
    """
    from ..models import validate_name
    from ..sinks.worker import add_sink

    validate_name(name)
    store = state(ctx).open_store()
    try:
        rec = add_sink(store, name, to, actor="cli")
        now = store.clock.now()
    finally:
        store.close()
    if as_json:
        print_json(rec.to_json(now))
        return
    console.print(
        f"{name}: version {rec.delivered_version} delivered to {rec.url}; "
        "`permatoken serve` delivers every new version",
        markup=False,
    )


@sink_app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this credential's sinks.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every sink, the version it holds and how far behind it is."""
    from ..models import validate_name
    from ..store.sinks import SinkTable

    if name is not None:
        validate_name(name)
    store = state(ctx).open_store()
    try:
        if name is not None:
            store.get(name)
        rows = SinkTable(store).all(name)
        now = store.clock.now()
    finally:
        store.close()
    if as_json:
        print_json([r.to_json(now) for r in rows])
        return
    if not rows:
        console.print("no sinks yet. Add one: `permatoken sink add NAME --to URL`")
        return
    from rich.table import Table

    from ..policy import format_duration

    table = Table(header_style="bold")
    for col in ("NAME", "SINK", "HOLDS", "CURRENT", "BEHIND", "LAST ERROR"):
        table.add_column(col)
    for r in rows:
        lag = (format_duration(round(r.lag_seconds(now))) or "0s") if r.behind else ""
        table.add_row(
            r.name,
            r.url,
            str(r.delivered_version or "-"),
            str(r.current_version or "-"),
            f"[yellow]{lag}[/]" if r.behind else "",
            r.last_error or "",
        )
    console.print(table)


@sink_app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The credential.")],
    to: Annotated[
        str | None, typer.Option("--to", help="Only this sink URL (default: all of NAME's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop pushing NAME's token to URL (the destination keeps what it holds)."""
    from ..models import validate_name
    from ..sinks.base import parse_sink_url
    from ..store.sinks import SinkTable

    validate_name(name)
    url = parse_sink_url(to).url if to is not None else None
    store = state(ctx).open_store()
    try:
        removed = SinkTable(store).remove(name, url, actor="cli")
    finally:
        store.close()
    if as_json:
        print_json({"name": name, "removed": removed})
        return
    for u in removed:
        console.print(f"{name}: removed sink {u}", markup=False)
