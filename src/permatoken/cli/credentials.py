"""init, add, status/list, get, remove."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .._exceptions import InputError
from ..health import assess, describe_left
from ..models import ISSUERS, Health, NewCredential, validate_name
from ..timeutil import isoformat, parse_datetime
from .app import REFUSE_ARGV, app, console, err_console, print_json, read_token, state

HEALTH_STYLE = {
    "ok": "green",
    "expiring": "yellow",
    "renewing": "cyan",
    "failing": "red",
    "needs_human": "bold red",
    "expired": "bold red",
    "invalid": "bold red",
}


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the data directory, a key file and the database (idempotent; upgrades the schema)."""
    from ..crypto import generate_key, write_key_file
    from ..store import engine as store_engine

    settings = state(ctx).settings
    home = settings.home
    created_home = not home.exists()
    home.mkdir(parents=True, exist_ok=True)
    if created_home:
        os.chmod(home, 0o700)
    key_file = settings.resolved_key_file
    if settings.key is not None:
        console.print("key: using PERMATOKEN_KEY from the environment")
    elif key_file.exists():
        from ..crypto import Keyring

        Keyring.from_file(key_file)  # refuses bad permissions or length now, not later
        console.print(f"key: keeping existing key file {key_file}")
    else:
        write_key_file(key_file, [generate_key()])
        console.print(
            f"key: generated {key_file} (mode 0600). Back it up: without it nothing decrypts."
        )
    url = settings.resolved_database_url
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


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Credential name, e.g. acme/messaging.")],
    value: Annotated[str | None, typer.Argument(hidden=True, show_default=False)] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Read the token from this file ('-' = stdin)."),
    ] = None,
    from_env: Annotated[
        str | None,
        typer.Option("--from-env", help="Read the token from this environment variable."),
    ] = None,
    obtain: Annotated[
        bool,
        typer.Option(
            "--obtain",
            help="Get the first value from the issuer instead of supplying one (mint, oauth2-refresh, login).",
        ),
    ] = False,
    issuer: Annotated[
        str, typer.Option(help=f"How new values are obtained: {', '.join(ISSUERS)}.")
    ] = "manual",
    business_id: Annotated[str | None, typer.Option("--business-id")] = None,
    waba_id: Annotated[
        list[str] | None,
        typer.Option("--waba-id", help="WhatsApp Business Account id (repeatable)."),
    ] = None,
    phone_number_id: Annotated[str | None, typer.Option("--phone-number-id")] = None,
    app_id: Annotated[
        str | None, typer.Option("--app-id", help="The Meta app the token belongs to.")
    ] = None,
    app_secret_file: Annotated[
        Path | None, typer.Option("--app-secret-file", help="Registers the app on first use.")
    ] = None,
    app_secret_env: Annotated[str | None, typer.Option("--app-secret-env")] = None,
    purpose: Annotated[str | None, typer.Option(help="messaging, management, media…")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", help="Issuer option KEY=VALUE (repeatable), e.g. system_user_id=123."
        ),
    ] = None,
    refresh_token_file: Annotated[
        Path | None, typer.Option("--refresh-token-file", help="oauth2-refresh: the refresh token.")
    ] = None,
    client_secret_file: Annotated[
        Path | None, typer.Option("--client-secret-file", help="oauth2-refresh: the client secret.")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="login: the password.")
    ] = None,
    renew_at: Annotated[
        str | None,
        typer.Option("--renew-at", help="Renew at this fraction of the lifetime (e.g. 0.66)."),
    ] = None,
    renew_before: Annotated[
        str | None, typer.Option("--renew-before", help="Renew this long before expiry (e.g. 10d).")
    ] = None,
    token_type: Annotated[
        str | None, typer.Option("--token-type", help="SYSTEM_USER, USER… (offline only).")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="ISO 8601 expiry (offline only).")
    ] = None,
    never_expires: Annotated[
        bool, typer.Option("--never-expires", help="The token never expires (offline only).")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Do not ask Meta; give --expires-at or --never-expires."),
    ] = False,
    token: Annotated[str | None, typer.Option("--token", hidden=True)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Store a token under NAME, inspect it with Meta, and print the verdict.

    The value is read from stdin, --token-file or --from-env, never from the command line.
    """
    from .. import policy as policy_mod
    from .apps import read_app_secret

    if value is not None or token is not None:
        raise InputError(REFUSE_ARGV)
    validate_name(name)
    if issuer not in ISSUERS:
        raise InputError(f"unknown issuer {issuer!r}; choose one of: {', '.join(ISSUERS)}")
    options = parse_options(option or [])
    overrides = {
        k: v
        for k, v in {"renew_at": renew_at, "renew_before": renew_before}.items()
        if v is not None
    }
    policy_overrides = policy_mod.parse_overrides(overrides)
    if expires_at is not None and never_expires:
        raise InputError("give either --expires-at or --never-expires, not both")
    expiry = parse_datetime(expires_at) if expires_at is not None else None
    inspect_online = not offline and app_id is not None
    if not inspect_online and expires_at is None and not never_expires:
        raise InputError(
            "cannot learn the expiry: give --app-id (permatoken asks Meta's debug_token), "
            "or --offline with --expires-at/--never-expires",
        )
    app_secret = read_app_secret(app_secret_file, app_secret_env)
    secrets = {}
    for sname, path in (
        ("refresh_token", refresh_token_file),
        ("client_secret", client_secret_file),
        ("password", password_file),
    ):
        if path is not None:
            secrets[sname] = read_token(path, None, what=sname.replace("_", " "))
    secret = None if obtain else read_token(token_file, from_env)
    spec = NewCredential(
        name=name,
        issuer=issuer,
        purpose=purpose,
        business_id=business_id,
        waba_ids=tuple(waba_id or ()),
        phone_number_id=phone_number_id,
        app_id=app_id,
        options=options,
        policy=_json_policy(policy_overrides),
    )
    st = state(ctx)
    store = st.open_store()
    now = store.clock.now()
    try:
        from ..onboarding import add_credential

        result = add_credential(
            st.settings,
            store,
            spec,
            secret,
            secrets=secrets,
            app_secret=app_secret,
            inspect_online=inspect_online,
            expiry=expiry,
            never_expires=never_expires,
            token_type=token_type,
        )
    finally:
        store.close()
    status = result.status
    if as_json:
        print_json(status.to_json(now) | {"verdict": result.verdict})
        return
    cur = status.current
    assert cur is not None
    console.print(
        f"added [bold]{name}[/] version {cur.version} ({cur.fingerprint}), "
        f"expires: {describe_left(cur.meta.expires_at, now)}, health: {assess(status.credential.health, cur.meta, now)}"
    )
    if result.verdict:
        console.print(f"verdict: {result.verdict}")
    if result.advice:
        console.print(f"[yellow]advice:[/] {result.advice}")


def _json_policy(overrides: dict[str, object]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}


def parse_options(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").isalnum() or len(key) > 40:
            raise InputError(f"option {item[:40]!r} is not KEY=VALUE (KEY of letters, digits, '_')")
        if len(val) > 500:
            raise InputError(f"option {key} is longer than 500 characters")
        out[key] = {"true": True, "false": False}.get(val.lower(), val)
    return out


def _status(ctx: typer.Context, tenant: str | None, health: str | None, as_json: bool) -> None:
    if health is not None and health not in {h.value for h in Health}:
        raise InputError(
            f"unknown health {health!r}; choose one of: {', '.join(h.value for h in Health)}"
        )
    from ..backup.status import last_backup_line
    from ..scheduler.policies import PolicyLayers
    from ..store.backups import BackupLog

    st = state(ctx)
    store = st.open_store()
    try:
        rows = store.list_status(tenant=tenant)
        now = store.clock.now()
        layers = PolicyLayers(st.settings, store)
        policies = [layers.for_credential(row.credential) for row in rows]
        last_backup = None if as_json else BackupLog(store).last()
    finally:
        store.close()
    items = []
    for row, policy in zip(rows, policies, strict=True):
        data = row.to_json(now, policy=policy)
        data["health"] = assess(
            row.credential.health, row.current.meta if row.current else None, now
        ).value
        if health is None or data["health"] == health:
            items.append(data)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("no credentials yet. Add one: `permatoken add NAME < token.txt`")
        return
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


@app.command()
def status(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (first name segment).")
    ] = None,
    health: Annotated[str | None, typer.Option(help="Only this health.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array, one object per credential.")
    ] = False,
) -> None:
    """Every credential with its health, expiry and version."""
    _status(ctx, tenant, health, as_json)


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option()] = None,
    health: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Same as status."""
    _status(ctx, tenant, health, as_json)


@app.command()
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
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
    name: Annotated[str, typer.Argument()],
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
