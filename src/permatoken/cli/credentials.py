"""init, status/list, get, remove (add and update are in ``onboard``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._exceptions import InputError
from ..health import assess, describe_left
from ..models import CredentialStatus, Health, validate_name
from ..timeutil import isoformat, parse_datetime
from .app import app, console, err_console, print_json, state

if TYPE_CHECKING:
    from ..crypto import Keyring

HEALTH_STYLE = {
    Health.OK: "green",
    Health.EXPIRING: "yellow",
    Health.RENEWING: "cyan",
    Health.FAILING: "red",
    Health.NEEDS_HUMAN: "bold red",
    Health.EXPIRED: "bold red",
    Health.INVALID: "bold red",
}


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the data directory, a key file and the database (idempotent; upgrades the schema).

    Refuses, writing nothing, when the database already holds data the available keys cannot
    open: a new key would only seal new data beside data nobody can read any more.
    """
    from ..crypto import Keyring, generate_key, write_key_file
    from ..store import engine as store_engine
    from ..store.keys import require_keys_before_init

    settings = state(ctx).settings
    home = settings.home
    key_file = settings.resolved_key_file
    ring: Keyring | None = None
    if settings.kms_key_id:
        from ..crypto import load_keyring

        # Proves now that KMS answers and the key exists; no key file is created or needed.
        ring = load_keyring(settings.key, key_file, kms_key_id=settings.kms_key_id)
    elif settings.key is not None:
        ring = Keyring.from_env_value(settings.key)
    elif key_file.exists() or key_file.is_symlink():
        ring = Keyring.from_file(key_file)  # refuses bad permissions or length now, not later
    url = settings.resolved_database_url
    require_keys_before_init(url, ring, key_file)
    created_home = not home.exists()
    home.mkdir(parents=True, exist_ok=True)
    if created_home:
        os.chmod(home, 0o700)
    if ring is not None and ring.kms is not None:
        console.print(f"key: AWS KMS key {ring.kms.arn} (no key file)", markup=False)
    elif settings.key is not None:
        console.print("key: using PERMATOKEN_KEY from the environment")
    elif ring is not None:
        console.print(f"key: keeping existing key file {key_file}")
    else:
        write_key_file(key_file, [generate_key()])
        console.print(
            f"key: generated {key_file} (mode 0600). Back it up: without it nothing decrypts."
        )
    engine = store_engine.create_engine(url)
    try:
        with store_engine.translated(url):
            before, after = store_engine.upgrade(engine)
    finally:
        engine.dispose()
    where = store_engine.describe_url(url)
    if before == after:
        console.print(f"database: {where} is up to date (schema {after})")
    elif before is None:
        console.print(f"database: created {where} (schema {after})")
    else:
        console.print(f"database: upgraded {where} from schema {before} to {after}")
    console.print("ready. Next: `permatoken add NAME < token.txt`")


def _status(
    ctx: typer.Context,
    name: str | None,
    tenant: str | None,
    health: str | None,
    as_json: bool,
    limit: int | None = None,
    after: str | None = None,
) -> None:
    if health is not None and health not in {h.value for h in Health}:
        raise InputError(
            f"unknown health {health!r}; choose one of: {', '.join(h.value for h in Health)}"
        )
    if name is not None:
        validate_name(name)
        if limit is not None or after is not None:
            raise InputError(
                "--limit and --after page through every credential, not one NAME",
                hint="`permatoken status NAME` or `permatoken status --limit 100`",
            )
    from ..scheduler.policies import PolicyLayers
    from ..store.pages import every_status, status_page
    from ..store.sinks import SinkTable

    st = state(ctx)
    store = st.open_store()
    try:
        if name is not None:
            rows: Iterable[CredentialStatus] = [store.status(name)]
        elif limit is not None or after is not None:
            # One more than asked: tells whether to hint at the next page.
            rows = status_page(store, after=after, limit=(limit or 100) + 1, tenant=tenant)
        else:
            rows = every_status(store, tenant=tenant)  # streamed, a page of rows at a time
        now = store.clock.now()
        layers = PolicyLayers(st.settings, store)
        sinks = SinkTable(store).all(name)  # few per store: read once, matched per row
        items = _status_items(rows, layers, now, health, sinks)
        if as_json and name is None and limit is None and after is None:
            _stream_json(items)
            return
        listed = list(items)
        more = None
        if limit is not None and len(listed) > limit:
            listed, more = listed[:limit], listed[limit - 1]["name"]
        last_backup = None if as_json else _last_backup(store)
    finally:
        store.close()
    if as_json:
        print_json(listed)
        return
    _status_table(listed, now, last_backup, sinks)
    if more is not None:
        console.print(f"more: `permatoken status --after {more} --limit {limit}`", markup=False)


def _status_items(
    rows: Iterable[CredentialStatus],
    layers: Any,
    now: datetime,
    health: str | None,
    sinks: list[Any],
) -> Iterator[dict[str, Any]]:
    by_name: dict[str, list[Any]] = {}
    for sink in sinks:
        by_name.setdefault(sink.name, []).append(sink)
    for row in rows:
        data = row.to_json(now, policy=layers.for_credential(row.credential))
        data["sinks"] = [s.to_json(now) for s in by_name.get(data["name"], [])]
        data["health"] = assess(
            row.credential.health, row.current.meta if row.current else None, now
        ).value
        if health is None or data["health"] == health:
            yield data


def _stream_json(items: Iterator[dict[str, Any]]) -> None:
    """The JSON array of ``print_json``, written as the rows are read (same bytes)."""
    out = sys.stdout
    first = True
    for data in items:
        body = json.dumps(data, indent=2, sort_keys=False).replace("\n", "\n  ")
        out.write(("[\n  " if first else ",\n  ") + body)
        first = False
    out.write("[]\n" if first else "\n]\n")
    out.flush()


def _last_backup(store: Any) -> Any:
    from ..store.backups import BackupLog

    return BackupLog(store).last()


def _status_table(
    items: list[dict[str, Any]], now: datetime, last_backup: Any, sinks: list[Any]
) -> None:
    from ..backup.status import last_backup_line

    if not items:
        console.print("no credentials yet. Add one: `permatoken add NAME < token.txt`")
        return
    from rich.table import Table

    table = Table(title=None, header_style="bold")
    for col in ("NAME", "HEALTH", "EXPIRES", "LEFT", "VER", "ISSUER", "TYPE", "STEP"):
        table.add_column(col)
    for data in items:
        exp = data["expires_at"]
        left = "never" if exp is None else describe_left(parse_datetime(exp), now)
        style = HEALTH_STYLE.get(data["health"], "")
        table.add_row(
            data["name"],
            f"[{style}]{data['health']}[/]",
            exp[:16].replace("T", " ") if exp else "never",
            left,
            str(data["version"] or "-"),
            data["issuer"],
            data["token_type"] or "-",
            data["rotation_step"] or "",
        )
    console.print(table)
    for data in items:
        up = data.get("upstream") or {}
        if up.get("previous_host"):
            console.print(
                f"[yellow]{data['name']}: {up['option']} host changed from {up['previous_host']} "
                f"to {up['host']} ({up['changed_at']} by {up['changed_by']})[/]"
            )
    console.print(last_backup_line(last_backup, now), markup=False)
    behind = [s for s in sinks if s.behind and s.name in {d["name"] for d in items}]
    if behind:
        console.print(
            f"sinks behind: {len(behind)} of {len(sinks)} (`permatoken sink list` shows them)",
            markup=False,
        )


NameFilter = Annotated[
    str | None, typer.Argument(metavar="NAME", help="Only this credential.", show_default=False)
]


@app.command()
def status(
    ctx: typer.Context,
    name: NameFilter = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (first name segment).")
    ] = None,
    health: Annotated[str | None, typer.Option(help="Only this health.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array, one object per credential.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, max=100_000, help="Only this many (default: all, streamed)."),
    ] = None,
    after: Annotated[
        str | None, typer.Option(help="Start after this name (the last of the previous page).")
    ] = None,
) -> None:
    """Every credential (or NAME) with its health, expiry and version, in name order."""
    _status(ctx, name, tenant, health, as_json, limit, after)


@app.command("list")
def list_(
    ctx: typer.Context,
    name: NameFilter = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    health: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int | None, typer.Option(min=1, max=100_000)] = None,
    after: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Same as status."""
    _status(ctx, name, tenant, health, as_json, limit, after)


@app.command()
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    version: Annotated[
        int | None, typer.Option(min=1, help="A specific version (default: current).")
    ] = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Print the value even to a terminal.")
    ] = False,
) -> None:
    """Print the current token: the value to a pipe (or with --reveal), else a masked fingerprint."""
    validate_name(name)
    store = state(ctx).open_store()
    try:
        v = store.version(name, version)
        if reveal or not sys.stdout.isatty():
            secret = store.reveal(name, v.version)
            sys.stdout.write(secret.reveal() + "\n")
            sys.stdout.flush()
            return
    finally:
        store.close()
    console.print(
        f"{name} version {v.version}: {v.fingerprint} (expires {isoformat(v.meta.expires_at) or 'never'})"
    )
    err_console.print("[dim]value hidden on a terminal; pipe it or use --reveal[/]")


@app.command()
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a credential and all its versions from the store (Meta is not told)."""
    validate_name(name)
    store = state(ctx).open_store()
    try:
        store.get(name)
        if not yes:
            if not sys.stdin.isatty():
                raise InputError(
                    f"refusing to remove {name!r} without confirmation", hint="add --yes"
                )
            typer.confirm(f"Remove {name} and all its versions?", abort=True)
        store.remove(name, actor="cli")
    finally:
        store.close()
    console.print(f"removed {name}")
