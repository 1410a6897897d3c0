"""onboard embedded-signup and import: a Tech Provider's clients, one from its Embedded Signup
code (``permatoken.providers.signup``), or many from a file (``permatoken.providers.importing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import (
    Command,
    app,
    console,
    err_console,
    print_json,
    read_token,
    rich_console,
    state,
    sub_app,
)

onboard_app = sub_app("Onboard Tech Provider clients (Embedded Signup).")
app.add_typer(onboard_app, name="onboard")


@onboard_app.command("embedded-signup", cls=Command)
def embedded_signup(
    ctx: typer.Context,
    code_file: Annotated[
        Path,
        typer.Option("--code-file", help="File holding the Embedded Signup code ('-' = stdin)."),
    ],
    tenant: Annotated[str, typer.Option("--tenant", help="The client's tenant, e.g. acme.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Credential name (default {tenant}/{waba-id}).")
    ] = None,
    app_id: Annotated[
        str | None, typer.Option("--app-id", help="Your app (default: the one registered).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Exchange the code (within its 30 s), store the business token first, inspect it, read the
    phone numbers, subscribe the app to each WABA, and print the credentials created.

    Repeating it with the same code prints the same answer and creates nothing new.
    """
    from ..providers.signup import check_target, onboard
    from ..service import build_engine

    check_target(tenant, name)
    code = read_token(code_file, None, what="Embedded Signup code")
    st = state(ctx)
    store = st.open_store()
    engine = build_engine(st.settings, store)
    try:
        result = onboard(
            st.settings, store, engine, code=code, tenant=tenant, name=name, app_id=app_id
        )
    finally:
        engine.close()
        store.close()
    if as_json:
        print_json(result)
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    again = " (this code was onboarded before: nothing new)" if result.get("repeated") else ""
    console.print(
        f"Onboarded business {result.get('business_id') or '?'} for tenant "
        f"{result['tenant']}{again}: {result['verdict']}"
    )
    for c in result["credentials"]:
        phones = ", ".join(c["phone_number_ids"]) or "no phone number yet"
        console.print(
            f"  {c['name']}  version {c['version']}  WABA {', '.join(c['waba_ids'])}  "
            f"phones {phones}  app subscribed"
        )


@app.command("import", cls=Command)
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="CSV (with a header) or JSON Lines (.jsonl).")
    ],
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Do not ask Meta; every row needs expires_at (or 'never')."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Judge every row, store nothing.")
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Put names without a '/' in this tenant; refuse others."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The per-row report as JSON.")] = False,
) -> None:
    """Import many tokens: columns name, token and optional expires_at, issuer, app_id,
    waba_id, phone_number_id, business_id.

    Each row is created, unchanged (the name already holds that token) or refused with the
    reason; exit code 15 when some rows were refused. The file must be private (chmod 600).
    """
    from .._exceptions import RowsRefusedError
    from ..providers.import_file import check_file
    from ..providers.importing import Importer, read_rows
    from ..service import build_engine

    check_file(file)
    if tenant is not None:
        from ..providers.signup import check_target

        check_target(tenant, None)
    st = state(ctx)
    store = st.open_store()
    engine = build_engine(st.settings, store)
    try:
        with _progress(file) as advance:
            importer = Importer(
                st.settings, store, engine, offline=offline, dry_run=dry_run, progress=advance
            )
            report = importer.run(read_rows(file, tenant=tenant))
    finally:
        engine.close()
        store.close()
    if as_json:
        print_json(report.to_json())
    else:
        _print_report(report.to_json(), dry_run)
    refused = report.count("refused")
    if refused:
        raise RowsRefusedError(
            f"{refused} of {len(report.rows)} rows were refused (each says why above)",
            hint="fix those rows and run `permatoken import` again: the others are unchanged",
            refused=refused,
        )


def _print_report(data: dict[str, Any], dry_run: bool) -> None:
    import sys

    out = sys.stdout
    for r in data["rows"]:
        why = f"  ({r['reason']})" if r["reason"] else ""
        out.write(f"line {r['line']}: {r['name'] or '-'}  {r['outcome']}{why}\n")
    note = " (dry run: nothing stored)" if dry_run else ""
    out.write(
        f"{data['created']} created, {data['unchanged']} unchanged, "
        f"{data['refused']} refused{note}\n"
    )


@contextmanager
def _progress(file: Path) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr when it is a terminal (rows counted as they are done)."""
    import sys

    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with file.open("rb") as f:
        total = max(sum(1 for _ in f) - 1, 0)
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        console=rich_console(err_console),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=total)
        yield lambda n: bar.advance(task, n)
