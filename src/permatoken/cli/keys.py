"""keys rotate / keys status: key-encryption keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .._exceptions import CryptoError
from .app import console, keys_app, print_json, rich_console, state

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
    """
    from rich.progress import Progress

    from ..crypto import Keyring, generate_key, read_key_file_keys, write_key_file

    st = state(ctx)
    settings = st.settings
    store = st.open_store()
    try:
        if settings.key is None:
            path = settings.resolved_key_file
            keys = read_key_file_keys(path)
            unfinished = [k for k in store.kek_usage() if k != store.keyring.active_id]
            if unfinished:
                # An earlier rotation stopped half-way: finish it instead of adding another key.
                console.print(f"resuming: {len(unfinished)} old key(s) still wrap data keys")
            else:
                keys.append(generate_key())
                write_key_file(path, keys)
                console.print(f"added a new key to {path}")
            store.keyring = Keyring.from_file(path)
        total = sum(n for k, n in store.kek_usage().items() if k != store.keyring.active_id)
        with Progress(console=rich_console(console), transient=True) as progress:
            task = progress.add_task("re-wrapping data keys", total=total or 1)
            done = store.rewrap(progress=lambda n: progress.advance(task, n))
        console.print(f"re-wrapped {done} data keys under {store.keyring.active_id}")
        if prune:
            _prune(store, settings)
    finally:
        store.close()


def _prune(store: Store, settings: Settings) -> None:
    """Drop keys no row uses. Processes started before the rotation still seal new values with
    the old key until they restart: restart them first (docs/security.md)."""
    from ..crypto import kek_id_of, read_key_file_keys, write_key_file

    if settings.key is not None:
        console.print("PERMATOKEN_KEY is set: remove old keys from it yourself")
        return
    path = settings.resolved_key_file
    keys = read_key_file_keys(path)
    keep = [
        k
        for k in keys
        if kek_id_of(k) in store.kek_usage() or kek_id_of(k) == store.keyring.active_id
    ]
    if len(keep) == len(keys):
        console.print("no unused keys to remove")
        return
    # Look again right before writing: a process that has not reloaded the key file may have
    # sealed a value under an old key meanwhile.
    in_use = store.kek_usage()
    if any(kek_id_of(k) in in_use for k in keys if k not in keep):
        raise CryptoError(
            "an old key came back into use while pruning",
            hint="restart every permatoken process so it loads the new key, then run `keys rotate --prune` again",
        )
    write_key_file(path, keep)
    console.print(f"removed {len(keys) - len(keep)} unused key(s) from {path}")


@keys_app.command("status")
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Which key-encryption keys are loaded and how many data keys each wraps."""
    from rich.table import Table

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
