"""backup --out FILE, backup verify FILE, backup status, restore FILE (docs/backup.md)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._exceptions import InputError, PermatokenError, StoreError
from .app import app, console, err_console, print_json, state
from .exit_codes import exit_code_for

if TYPE_CHECKING:
    from .._secret import Secret

#: Called after every row written with (table, rows written so far).
Checkpoint = Callable[[str, int], None]

backup_app = typer.Typer(
    help="Backups that restore anywhere: `backup --out FILE`, `backup verify FILE`, "
    "`backup status`; `restore FILE` brings one back.",
)
app.add_typer(backup_app, name="backup")

PassphraseOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File (mode 0600) holding the passphrase that seals the keys in the backup.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
#: Test-only: "N:PATH" pauses a backup after N rows until PATH exists (creating PATH.reached).
_PAUSE_ENV = "_PERMATOKEN_TEST_BACKUP_PAUSE"


def _passphrase(path: Path | None) -> Secret | None:
    from ..backup.sealing import read_passphrase

    return read_passphrase(path) if path is not None else None


@backup_app.callback(invoke_without_command=True)
def backup(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="The backup file to write.")] = None,
    passphrase_file: PassphraseOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a consistent backup of the whole store to --out FILE (tokens stay encrypted)."""
    if ctx.invoked_subcommand is not None:
        if out is not None or passphrase_file is not None or force or as_json:
            raise InputError(
                f"options before `{ctx.invoked_subcommand}` belong to `permatoken backup --out "
                "FILE`; put them after the subcommand",
                hint="e.g. `permatoken backup verify FILE --json`, not `--json verify FILE`",
            )
        return
    if out is None:
        raise InputError(
            "say where to write the backup",
            hint="`permatoken backup --out FILE` (see also `permatoken backup verify FILE`)",
        )
    from ..backup.create import create_backup

    passphrase = _passphrase(passphrase_file)
    store = state(ctx).open_store()
    try:
        started = store.clock.now()
        try:
            with _progress() as shown:
                pause = _test_pause()

                def checkpoint(table: str, rows: int) -> None:
                    shown(table, rows)
                    if pause is not None:
                        pause(table, rows)

                result = create_backup(
                    store, out, passphrase=passphrase, force=force, checkpoint=checkpoint
                )
        except PermatokenError as exc:
            _record(store, started, ok=False, error=exc.message)
            raise
        _record(
            store,
            started,
            ok=True,
            path=str(result.path),
            size=result.size,
            sha256=result.sha256,
            counts=result.counts,
        )
    finally:
        store.close()
    if as_json:
        print_json(result.to_json())
        return
    sealed = "keys sealed under the passphrase" if result.passphrase else "restore needs the keys"
    console.print(
        f"backup written to {result.path} ({result.size:,} bytes, schema "
        f"{result.schema_revision}; {sealed})"
    )
    console.print(_counts_line(result.counts))
    console.print(f"sha256 {result.sha256}; check it any time: `permatoken backup verify FILE`")


def _record(store: Any, started: Any, **outcome: Any) -> None:
    """Log the backup in the store; a read-only store still gets its backup, with a warning."""
    from ..store.backups import BackupLog

    owner = f"cli:{socket.gethostname()}:{os.getpid()}"
    try:
        BackupLog(store).record("manual", owner, started, store.clock.now(), **outcome)
    except StoreError as exc:
        err_console.print(f"warning: could not record the backup in the store: {exc.message}")


@contextlib.contextmanager
def _progress() -> Iterator[Checkpoint]:
    """Rows written so far, on a terminal (a spinner; the total is not known in advance)."""
    if not err_console.is_terminal:
        yield lambda table, rows: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err_console, transient=True
    ) as progress:
        task = progress.add_task("backing up")

        def show(table: str, rows: int) -> None:
            if rows % 1000 == 0:
                progress.update(task, description=f"backing up: {rows:,} rows ({table})")

        yield show


def _test_pause() -> Checkpoint | None:
    spec = os.environ.get(_PAUSE_ENV)
    if not spec:
        return None
    n_text, _, path_text = spec.partition(":")
    at, gate = int(n_text), Path(path_text)

    def pause(table: str, rows: int) -> None:
        if rows == at:
            Path(f"{gate}.reached").write_text(table)
            while not gate.exists():  # waits on the test, which kills or releases us
                time.sleep(0.01)

    return pause


def _counts_line(counts: dict[str, int]) -> str:
    main = ("credentials", "versions", "apps", "api_keys", "events", "audit_log", "notices")
    parts = [f"{counts.get(t, 0):,} {t}" for t in main]
    rest = sum(n for t, n in counts.items() if t not in main)
    return ", ".join(parts) + f", {rest:,} other rows"


@backup_app.command("verify")
def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file.")],
    passphrase_file: PassphraseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check integrity, format and that every secret opens; writes nothing (exit 0 = OK)."""
    from ..backup.verify import verify_backup
    from ..crypto import load_keyring

    settings = state(ctx).settings
    try:
        passphrase = _passphrase(passphrase_file)
        result = verify_backup(
            file,
            keyring=lambda: load_keyring(
                settings.key, settings.resolved_key_file, kms_key_id=settings.kms_key_id
            ),
            passphrase=passphrase,
        )
    except PermatokenError as exc:
        if as_json:
            print_json({"ok": False, "path": str(file)} | _reason(exc))
        else:
            err_console.print(f"backup {file}: FAILED", highlight=False, markup=False)
            err_console.print(f"reason: {exc.message}", highlight=False, markup=False)
            if exc.hint:
                err_console.print(f"hint: {exc.hint}", highlight=False, markup=False)
        raise typer.Exit(exit_code_for(exc)) from None
    if as_json:
        print_json(result.to_json())
        return
    data = result.to_json()
    console.print(f"backup {file}: OK", markup=False)
    console.print(
        f"created {data['created_at']} from {data['source_dialect']} by permatoken "
        f"{data['permatoken_version']}; schema {data['schema_revision']}; format {data['format']}",
        markup=False,
    )
    console.print(
        f"keys: {', '.join(data['kek_ids']) or '-'}; MAC checked with: "
        f"{', '.join(data['macs_checked'])}; {data['secrets_opened']:,} secrets open "
        "(checked in memory, not shown)",
        markup=False,
    )
    from rich.table import Table

    table = Table(header_style="bold")
    table.add_column("TABLE")
    table.add_column("ROWS", justify="right")
    for name, n in sorted(result.counts.items()):
        table.add_row(name, f"{n:,}")
    console.print(table)


def _reason(exc: PermatokenError) -> dict[str, Any]:
    return {"code": exc.code, "reason": exc.message, "hint": exc.hint}


@backup_app.command("status")
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """When the last good backup was taken (and the last attempt, if it failed)."""
    from ..backup.status import last_backup_json, last_backup_line
    from ..store.backups import BackupLog

    store = state(ctx).open_store()
    try:
        log = BackupLog(store)
        last, attempt = log.last(), log.last(state=None)
        now = store.clock.now()
    finally:
        store.close()
    failed = attempt if attempt is not None and attempt.state == "failed" else None
    if as_json:
        print_json(
            {
                "last_backup": last_backup_json(last, now),
                "last_failure": failed.to_json() if failed is not None else None,
            }
        )
        return
    console.print(last_backup_line(last, now), markup=False)
    if failed is not None:
        console.print(
            f"last attempt FAILED at {failed.to_json()['started_at']}: {failed.error}", markup=False
        )


@app.command()
def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file written by `permatoken backup`.")],
    passphrase_file: PassphraseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into the store the settings name; it must be empty (any engine)."""
    from ..backup.restore import restore_backup

    st = state(ctx)
    result = restore_backup(st.settings, file, passphrase=_passphrase(passphrase_file))
    if as_json:
        print_json(result.to_json())
        return
    console.print(
        f"restored {file} into {result.target} (schema {result.schema_revision})", markup=False
    )
    console.print(_counts_line(result.counts), markup=False)
    if result.key_file_written is not None:
        console.print(
            f"wrote the backup's keys to {result.key_file_written} (mode 0600). Back it up.",
            markup=False,
        )
    console.print("next: `permatoken audit verify` and `permatoken status`", markup=False)
