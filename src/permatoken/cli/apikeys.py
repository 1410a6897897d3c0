"""keys create / list / revoke: broker API keys, working directly on the local store."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from .app import console, err_console, keys_app, print_json, state


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@keys_app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help="admin, operator, reader or app.")],
    grant: Annotated[
        list[str] | None,
        typer.Option(
            "--grant", help="Credential-name pattern, e.g. acme/* or acme/** (repeatable)."
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", help="Lifetime, e.g. 90d, 12h (default: no expiry)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="A label to recognise the key by.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a broker API key. The key is printed once; only its hash is stored."""
    from ..access import parse_duration
    from ..store.apikeys import KeyStore

    seconds = parse_duration(expires_in) if expires_in else None
    store = state(ctx).open_store()
    try:
        key, value = KeyStore(store).create(
            role, grant or [], expires_in=seconds, label=name, actor=_actor(), source="local"
        )
    finally:
        store.close()
    if as_json:
        print_json(key.to_json() | {"key": value.reveal()})
        return
    console.print(value.reveal())
    err_console.print(
        f"created {key.role.value} key {key.id}"
        + (f" for {', '.join(key.grants)}" if key.grants else "")
        + (f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "")
        + ". It is shown only now: store it in your secret manager."
    )


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Broker API keys (ids, roles, grants; never the keys themselves)."""
    from datetime import UTC, datetime

    from rich.table import Table

    from ..store.apikeys import KeyStore

    store = state(ctx).open_store()
    try:
        keys = KeyStore(store).list()
    finally:
        store.close()
    if as_json:
        print_json([k.to_json() for k in keys])
        return
    now = datetime.now(UTC)
    table = Table(header_style="bold")
    for col in ("ID", "PREFIX", "ROLE", "GRANTS", "LABEL", "CREATED", "EXPIRES", "STATE"):
        table.add_column(col)
    for k in keys:
        st = "revoked" if k.revoked_at else ("expired" if not k.usable_at(now) else "active")
        table.add_row(
            k.id,
            k.prefix + "…",
            k.role.value,
            ", ".join(k.grants) or "(all)",
            k.label or "",
            f"{k.created_at:%Y-%m-%d}",
            f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "never",
            st,
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id (from `permatoken keys list`).")
    ],
) -> None:
    """Revoke a broker API key (every replica refuses it within a few seconds)."""
    from ..store.apikeys import KeyStore

    store = state(ctx).open_store()
    try:
        key = KeyStore(store).revoke(key_id, actor=_actor(), source="local")
    finally:
        store.close()
    console.print(f"revoked key {key.id} ({key.role.value})")
