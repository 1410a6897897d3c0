"""onboard embedded-signup: a Tech Provider's client, from its Embedded Signup code to stored,
subscribed credentials (``permatoken.providers.signup``); ``import`` lives in ``cli/importing``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .app import Command, app, console, print_json, read_token, state, sub_app

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
