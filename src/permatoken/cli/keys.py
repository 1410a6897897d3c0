"""keys rotate / keys status: key-encryption keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import console, err_console, keys_app, print_json, rich_console, state

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
    With PERMATOKEN_KMS_KEY_ID set, every data key moves under that AWS KMS key; unset it
    (keeping or losing the key file) and run this again to move back to a key file.
    """
    st = state(ctx)
    _key_file_to_leave_kms(st.settings)
    store = st.open_store()
    done = [0]
    try:
        _rotate(store, st.settings, done)
        if prune:
            _prune(store, st.settings)
    except KeyboardInterrupt:
        # Batches are committed one by one and the key file is written atomically.
        err_console.print(
            f"interrupted after re-wrapping {done[0]} data keys; nothing is lost: run "
            "`permatoken keys rotate` again to finish (it resumes and adds no further key)"
        )
        raise
    finally:
        store.close()


def _key_file_to_leave_kms(settings: Settings) -> None:
    """Moving off KMS (PERMATOKEN_KMS_KEY_ID unset, no key file, every data key under KMS):
    create the key file the data keys will move to, as `init` would have."""
    from ..crypto import generate_key, write_key_file
    from ..store import engine as store_engine
    from ..store.keys import kek_usage

    path = settings.resolved_key_file
    if settings.kms_key_id or settings.key is not None or path.exists() or path.is_symlink():
        return
    url = settings.resolved_database_url
    engine = store_engine.create_engine(url, create=False)
    try:
        with store_engine.translated(url):
            store_engine.check_schema(engine)
        usage = kek_usage(engine, url)
    finally:
        engine.dispose()
    if usage and all(k.startswith("kms:") for k in usage):
        write_key_file(path, [generate_key()])
        console.print(f"moving off AWS KMS: generated {path} (mode 0600); back it up")


def _rotate(store: Store, settings: Settings, done: list[int]) -> None:
    from rich.progress import Progress

    from ..crypto import generate_key, read_key_file_keys, write_key_file
    from ..store.keys import keys_error

    # Before the key file changes: a key set that cannot open the data would only add to it.
    problems = store.key_problems()
    if problems:
        raise keys_error(store.keyring.source, problems)
    if settings.kms_key_id:
        unfinished = [k for k in store.kek_usage() if k != store.keyring.active_id]
        if unfinished:
            console.print(f"moving {len(unfinished)} key(s)' data keys to AWS KMS")
    elif settings.key is None:
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

    def advance(n: int) -> None:
        done[0] += n
        progress.advance(task, n)

    with Progress(console=rich_console(console), transient=True) as progress:
        task = progress.add_task("re-wrapping data keys", total=total or 1)
        store.rewrap(progress=advance)
    console.print(f"re-wrapped {done[0]} data keys under {active}")


def _prune(store: Store, settings: Settings) -> None:
    """Drop keys no row uses, with writers of sealed values held off meanwhile (a process that
    follows the key file seals under the newest key from its next seal on)."""
    from ..crypto import kek_id_of, read_key_file_keys, write_key_file

    if settings.kms_key_id:
        console.print(
            "AWS KMS is the active key: once `permatoken keys status` shows the key file wraps "
            "nothing, move it away yourself (keep a copy for old backups)"
        )
        return
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
    """Which key-encryption keys are loaded and how many data keys each wraps.

    Works without loadable keys too (a lost or damaged key file): it then lists the keys the
    store needs, says why none is loaded, and exits 6.
    """
    from .._exceptions import CryptoError
    from ..crypto import load_keyring
    from ..store import engine as store_engine
    from ..store.keys import kek_usage

    settings = state(ctx).settings
    url = settings.resolved_database_url
    engine = store_engine.create_engine(url, create=False)
    try:
        with store_engine.translated(url):
            store_engine.check_schema(engine)
        usage = kek_usage(engine, url)
    finally:
        engine.dispose()
    problem: CryptoError | None = None
    try:
        keyring = load_keyring(
            settings.key, settings.resolved_key_file, kms_key_id=settings.kms_key_id
        )
        loaded, active = keyring.ids, keyring.active_id
    except CryptoError as exc:
        problem, loaded, active = exc, [], ""
    rows: list[dict[str, Any]] = [
        {"kek_id": k, "loaded": k in loaded, "active": k == active, "data_keys": usage.get(k, 0)}
        for k in sorted(set(loaded) | set(usage))
    ]
    if as_json:
        print_json(rows)
    else:
        from rich.table import Table

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
    if problem is not None:
        raise problem
