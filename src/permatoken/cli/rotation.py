"""inspect, rotate, revoke."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .._exceptions import InputError, RotationError
from ..health import describe_left
from ..models import validate_name
from ..timeutil import isoformat
from .app import app, console, print_json, read_token, state

if TYPE_CHECKING:
    from .._secret import Secret
    from ..models import Credential


@app.command()
def inspect(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="A stored credential; omit to inspect a token read from stdin."
        ),
    ] = None,
    app_id: Annotated[
        str | None, typer.Option("--app-id", help="The app to ask with (for a token from stdin).")
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file")] = None,
    from_env: Annotated[str | None, typer.Option("--from-env")] = None,
    canary: Annotated[
        bool, typer.Option("--canary", help="Also make a harmless call with the token.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ask Meta what a token really is (debug_token) and print the verdict."""
    from .._exceptions import GraphError
    from ..onboarding import unreachable
    from ..service import build_engine

    st = state(ctx)
    store = st.open_store()
    engine = build_engine(st.settings, store)
    try:
        if name is not None:
            validate_name(name)
            insp = engine.inspect(name, canary=canary or None)
            result, said, health = insp.result, insp.verdict, insp.health.value
        else:
            if app_id is None:
                raise InputError(
                    "give --app-id: debug_token is asked with the app token",
                    hint="register the app with `permatoken app add`",
                )
            token = read_token(token_file, from_env)
            result = engine.inspect_value(token, app_id)
            said = engine.describe(result)
            health = "ok" if result.is_valid else "invalid"
    except GraphError as exc:
        upstream = unreachable(exc, st.settings, "inspect the token", offline=False)
        if upstream is None:
            raise
        raise upstream from exc
    finally:
        engine.close()
        store.close()
    if as_json:
        print_json(
            {
                "name": name,
                "valid": result.is_valid,
                "type": result.type,
                "token_kind": str(said.token_kind),
                "expires_at": isoformat(result.expires_at),
                "never_expires": result.expires_at is None and result.is_valid,
                "scopes": list(result.scopes),
                "waba_ids": list(result.waba_ids),
                "health": health,
                "verdict": said.summary,
                "advice": said.advice,
            }
        )
        return
    console.print(said.summary)
    if said.advice:
        console.print(f"[yellow]advice:[/] {said.advice}")


@app.command()
def rotate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    force: Annotated[
        bool, typer.Option("--force", help="Rotate again even if another worker just did.")
    ] = False,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Supply the new value yourself ('-' = stdin)."),
    ] = None,
    from_env: Annotated[
        str | None, typer.Option("--from-env", help="Read the new value from this variable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Renew NAME now through its issuer (staged: obtain, store as pending, verify, promote).

    A manual credential takes the new value from --token-file, --from-env or a pipe on stdin.
    """
    from ..service import build_engine

    validate_name(name)
    value = read_token(token_file, from_env) if (token_file or from_env) else None
    st = state(ctx)
    store = st.open_store()
    try:
        if value is None and _needs_a_value(store.get(name)):
            value = _value_from_stdin(name)
    except BaseException:
        store.close()
        raise
    engine = build_engine(st.settings, store)
    try:
        outcome = engine.rotate(name, force=force, value=value, reason="cli")
    finally:
        engine.close()
        store.close()
    if as_json:
        print_json(
            {
                "name": name,
                "status": outcome.status,
                "version": outcome.version,
                "previous_version": outcome.previous_version,
                "expires_at": isoformat(outcome.expires_at),
                "message": outcome.message,
                "retry_at": isoformat(outcome.retry_at),
            }
        )
    elif outcome.ok:
        left = describe_left(outcome.expires_at, engine.clock.now())
        console.print(
            f"{name}: {outcome.status}, version {outcome.version}, expires: {isoformat(outcome.expires_at) or 'never'} ({left})"
        )
        if outcome.previous_version:
            console.print(
                f"version {outcome.previous_version} is kept as previous through the grace period"
            )
    if not outcome.ok:
        raise RotationError(
            f"{name}: {outcome.status}: {outcome.message}", name=name, status=outcome.status
        )


def _needs_a_value(cred: Credential) -> bool:
    """A manual credential has no way to get a value: asking its issuer would only mark it
    ``needs_human``. An unfinished rotation is resumed instead (it already has its value)."""
    from ..issuers import issuer_for

    return not issuer_for(cred.issuer).automatic and not cred.rotation_step


def _value_from_stdin(name: str) -> Secret:
    """The new value piped on stdin; on a terminal, a refusal that says how to give it."""
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            f"{name} is renewed by hand (manual issuer): permatoken cannot get a new value "
            "itself, so nothing was changed",
            hint=f"give it the new token: `permatoken rotate {name} --token-file FILE` "
            "(or --from-env VAR, or pipe it on stdin)",
            name=name,
        )
    return read_token(None, None)


@app.command()
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    version: Annotated[
        int | None, typer.Option(min=1, help="The version to revoke (default: the previous one).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
) -> None:
    """Revoke a version at Meta (GET /oauth/revoke) and mark it revoked."""
    from ..models import VersionState
    from ..service import build_engine

    validate_name(name)
    st = state(ctx)
    store = st.open_store()
    engine = build_engine(st.settings, store)
    try:
        if version is None:
            prev = [v for v in store.versions(name) if v.state is VersionState.PREVIOUS]
            if not prev:
                raise InputError(
                    f"{name} has no previous version to revoke",
                    hint="give --version N (revoking the current one stops your app)",
                )
            version = prev[-1].version
        target = store.version(name, version)
        if target.state is VersionState.CURRENT and not yes:
            if not sys.stdin.isatty():
                raise InputError(
                    f"version {version} is the current one; revoking it stops every app using it",
                    hint="add --yes if you mean it",
                )
            typer.confirm(f"Version {version} is current. Revoke it anyway?", abort=True)
        engine.revoke(name, version)
    finally:
        engine.close()
        store.close()
    console.print(f"{name}: version {version} revoked")
