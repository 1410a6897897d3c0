"""add and update: put a credential under permatoken's care, and complete it later.

Both refuse before writing anything, and write in one transaction: a failed or interrupted
``add`` leaves no credential and no app behind (``permatoken.onboarding``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .._exceptions import InputError
from ..models import ISSUERS, validate_name
from ..vocabulary import SECRET_NAMES, SecretName
from .app import REFUSE_ARGV, Command, app, console, print_json, read_token, state
from .apps import read_app_secret

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Credential name, e.g. acme/messaging.")
]
AppIdOpt = Annotated[
    str | None, typer.Option("--app-id", help="The Meta app the token belongs to.")
]
AppSecretFileOpt = Annotated[
    Path | None,
    typer.Option("--app-secret-file", help="The app's secret, to register the app on first use."),
]
AppSecretEnvOpt = Annotated[
    str | None, typer.Option("--app-secret-env", help="Environment variable holding the secret.")
]
BusinessOpt = Annotated[str | None, typer.Option("--business-id", help="The owner business id.")]
WabaOpt = Annotated[
    list[str] | None,
    typer.Option("--waba-id", help="WhatsApp Business Account id (repeatable)."),
]
PhoneOpt = Annotated[str | None, typer.Option("--phone-number-id", help="Phone-number id.")]
PurposeOpt = Annotated[str | None, typer.Option(help="messaging, management, media…")]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option", "-o", help="Issuer option KEY=VALUE (repeatable), e.g. system_user_id=123."
    ),
]


@app.command(cls=Command)
def add(
    ctx: typer.Context,
    name: NameArg,
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
    business_id: BusinessOpt = None,
    waba_id: WabaOpt = None,
    phone_number_id: PhoneOpt = None,
    app_id: AppIdOpt = None,
    app_secret_file: AppSecretFileOpt = None,
    app_secret_env: AppSecretEnvOpt = None,
    purpose: PurposeOpt = None,
    option: OptionOpt = None,
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
    Nothing is stored unless the whole add succeeds.
    """
    from .. import policy as policy_mod
    from ..health import assess, describe_left
    from ..models import NewCredential
    from ..timeutil import parse_datetime

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
    # One --NAME-file option per declared secret name (tests/cli/test_cli.py checks the options).
    secret_files: dict[SecretName, Path | None] = {
        "refresh_token": refresh_token_file,
        "client_secret": client_secret_file,
        "password": password_file,
    }
    secrets: dict[str, Any] = {}
    for sname in SECRET_NAMES:
        path = secret_files[sname]
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


@app.command()
def update(
    ctx: typer.Context,
    name: NameArg,
    app_id: AppIdOpt = None,
    app_secret_file: AppSecretFileOpt = None,
    app_secret_env: AppSecretEnvOpt = None,
    business_id: BusinessOpt = None,
    waba_id: WabaOpt = None,
    phone_number_id: PhoneOpt = None,
    purpose: PurposeOpt = None,
    option: OptionOpt = None,
    unset_option: Annotated[
        list[str] | None,
        typer.Option("--unset-option", help="Remove an issuer option (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Complete or correct a credential's details (app, business, WABAs, options).

    For instance, attach the Meta app to a credential added with --offline.
    The token itself is changed with `permatoken rotate`, the renewal policy with
    `permatoken policy set`, an app's secret with `permatoken app update`.
    """
    from ..onboarding import update_credential

    validate_name(name)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "app_id": app_id,
            "business_id": business_id,
            "phone_number_id": phone_number_id,
            "purpose": purpose,
        }.items()
        if v is not None
    }
    if waba_id:
        changes["waba_ids"] = tuple(waba_id)
    options = parse_options(option or [])
    removed = tuple(unset_option or ())
    app_secret = read_app_secret(app_secret_file, app_secret_env)
    if app_secret is not None and app_id is None:
        raise InputError("--app-secret-file/--app-secret-env go with --app-id")
    if not changes and not options and not removed:
        raise InputError(
            "nothing to change",
            hint=f"e.g. `permatoken update {name} --app-id APP_ID --app-secret-file FILE`",
        )
    store = state(ctx).open_store()
    try:
        cred = update_credential(
            store, name, changes, options=options, unset=removed, app_secret=app_secret
        )
    finally:
        store.close()
    data = {
        "name": cred.name,
        "app_id": cred.app_id,
        "business_id": cred.business_id,
        "waba_ids": list(cred.waba_ids),
        "phone_number_id": cred.phone_number_id,
        "purpose": cred.purpose,
        "options": sorted(cred.options),
    }
    if as_json:
        print_json(data)
        return
    console.print(f"updated {name}")
    if app_id is not None:
        console.print(f"next: `permatoken inspect {name}` asks Meta what the token really is")


def _json_policy(overrides: dict[str, object]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}


def parse_options(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").isalnum() or len(key) > 40:
            raise InputError(
                f"option {item[:40]!r} is not KEY=VALUE (KEY of letters, digits, '_')",
                hint="e.g. --option system_user_id=123 (repeat --option for more)",
            )
        if len(val) > 500:
            raise InputError(f"option {key} is longer than 500 characters")
        out[key] = {"true": True, "false": False}.get(val.lower(), val)
    return out
