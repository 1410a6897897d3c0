"""doctor and sandbox."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated, Any

import typer

from .._exceptions import PermatokenError
from .app import app, console, listen_error, print_json, state


def _check(results: list[dict[str, Any]], name: str, fn: Any) -> Any:
    try:
        detail = fn()
    except PermatokenError as exc:
        results.append({"check": name, "ok": False, "detail": exc.message, "fix": exc.hint})
        return None
    results.append({"check": name, "ok": True, "detail": detail, "fix": None})
    return detail


@app.command()
def doctor(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the home directory, key, database and schema, and say what to fix."""
    from ..crypto import load_keyring
    from ..store import engine as store_engine

    st = state(ctx)
    results: list[dict[str, Any]] = []
    settings = _check(results, "settings", lambda: st.settings)
    if settings is not None:
        results[-1]["detail"] = "loaded"

        def home() -> str:
            path: Path = settings.home
            if not path.exists():
                raise PermatokenError(f"{path} does not exist", hint="run `permatoken init`")
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise PermatokenError(
                    f"{path} is accessible by others (mode {mode:04o})", hint=f"chmod 700 {path}"
                )
            if not os.access(path, os.W_OK):
                raise PermatokenError(f"{path} is not writable")
            return f"{path} (mode {mode:04o})"

        _check(results, "home directory", home)
        keyring = _check(
            results,
            "key",
            lambda: load_keyring(
                settings.key, settings.resolved_key_file, kms_key_id=settings.kms_key_id
            ),
        )
        if keyring is not None:
            results[-1]["detail"] = (
                f"{keyring.source}: {len(keyring.ids)} key(s), active {keyring.active_id}"
            )
        url = settings.resolved_database_url

        def database() -> str:
            engine = store_engine.create_engine(url, create=False)
            try:
                with store_engine.translated(url):
                    rev = store_engine.check_schema(engine)
            finally:
                engine.dispose()
            return f"{store_engine.describe_url(url)}, schema {rev}"

        db_ok = _check(results, "database and schema", database)
        if db_ok is not None and keyring is not None:

            def keys_in_use() -> str:
                store = st.open_store()
                try:
                    usage = store.kek_usage()
                finally:
                    store.close()
                missing = [k for k in usage if k not in keyring.ids]
                if missing:
                    raise PermatokenError(
                        f"data keys are wrapped by key(s) not loaded: {', '.join(missing)}",
                        hint="load the key file or PERMATOKEN_KEY that holds them",
                    )
                old = [k for k in usage if k != keyring.active_id]
                note = (
                    f"; {len(old)} older key(s) still in use, run `permatoken keys rotate`"
                    if old
                    else ""
                )
                return f"all {sum(usage.values())} data keys can be unwrapped{note}"

            _check(results, "keys in use", keys_in_use)
    if as_json:
        print_json(results)
    else:
        from rich.markup import escape

        for r in results:
            mark = "[green]✓[/]" if r["ok"] else "[red]✗[/]"
            console.print(f"{mark} {r['check']}: {escape(str(r['detail']))}")
            if r["fix"]:
                console.print(f"    fix: {escape(r['fix'])}")
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 = any free port).")] = 8787,
    fixtures_out: Annotated[
        Path | None, typer.Option("--fixtures-out", help="Write the seeded world here as JSON.")
    ] = None,
) -> None:
    """Serve the local imitation of Meta's Graph API (for tests, demos and your own integration tests)."""
    import socket

    from .. import sandbox as sandbox_mod

    # The sandbox binds first thing; try the address here so a busy port gets a clear error.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise listen_error(exc, "sandbox", host, port) from None
    sandbox_mod.serve(host, port, fixtures_out)
