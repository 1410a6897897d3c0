"""keys rotate / keys status: key-encryption keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from .app import console, err_console, keys_app, print_json, state

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store import Store


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    prune: Annotated[
        bool, typer.Option("--prune", help="Afterwards remove old keys no row uses any more.")
    ] = False,
) -> None:
    """Add a new key-encryption key and re-wrap every data key under it (online, resumable).

    With PERMATOKEN_KEY, append the new key to that (comma-separated) value yourself, then run
    this command to re-wrap; with a key file the new key is generated and appended for you.
    Running processes that use the same key file pick up the new key by themselves.
    """
    from ..crypto import generate_key, read_key_file_keys, write_key_file
    from ..store.keys import keys_error

    st = state(ctx)
    settings = st.settings
    store = st.open_store()
    try:
        # Before the key file changes: a key set that cannot open the data would only add to it.
        problems = store.key_problems()
        if problems:
            raise keys_error(store.keyring.source, problems)
        if settings.key is None:
            path = settings.resolved_key_file
            unfinished = [k for k in store.kek_usage() if k != store.keyring.active_id]
            if unfinished:
                # An earlier rotation stopped half-way: finish it instead of adding another key.
                console.print(f"resuming: {len(unfinished)} old key(s) still wrap data keys")
            else:
                write_key_file(path, [*read_key_file_keys(path), generate_key()])
                console.print(f"added a new key to {path}")
            store.keyring.refresh()
        active = store.keyring.active_id
        total = sum(n for k, n in store.kek_usage().items() if k != active)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            progress.advance(task, n)

        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("re-wrapping data keys", total=total or 1)
                store.rewrap(progress=advance)
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted after re-wrapping {done} of {total} data keys (all committed); "
                "run `permatoken keys rotate` again to finish"
            )
            raise
        console.print(f"re-wrapped {done} data keys under {active}")
        if prune:
            _prune(store, settings)
    finally:
        store.close()


def _prune(store: Store, settings: Settings) -> None:
    """Drop keys no row uses, with writers of sealed values held off meanwhile (a process that
    follows the key file seals under the newest key from its next seal on)."""
    from ..crypto import kek_id_of, read_key_file_keys, write_key_file

    if settings.key is not None:
        console.print("PERMATOKEN_KEY is set: remove old keys from it yourself")
        return
    path = settings.resolved_key_file
    with store.kek_usage_frozen() as in_use:
        keys = read_key_file_keys(path)
        keep = [k for k in keys[:-1] if kek_id_of(k) in in_use] + keys[-1:]
        if len(keep) == len(keys):
            console.print("no unused keys to remove")
            return
        write_key_file(path, keep)
    store.keyring.refresh()
    console.print(f"removed {len(keys) - len(keep)} unused key(s) from {path}")


@keys_app.command("status")
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Which key-encryption keys are loaded and how many data keys each wraps."""
    store = state(ctx).open_store()
    try:
        usage = store.kek_usage()
        loaded = store.keyring.ids
        active = store.keyring.active_id
    finally:
        store.close()
    rows = [
        {"kek_id": k, "loaded": k in loaded, "active": k == active, "data_keys": usage.get(k, 0)}
        for k in sorted(set(loaded) | set(usage))
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(header_style="bold")
    for col in ("KEK", "LOADED", "ACTIVE", "DATA KEYS"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["kek_id"],
            "yes" if r["loaded"] else "[red]no[/]",
            "yes" if r["active"] else "",
            str(r["data_keys"]),
        )
    console.print(table)
