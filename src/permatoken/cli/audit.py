"""audit verify / audit list: the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, console, err_console, print_json, state, sub_app

audit_app = sub_app("The tamper-evident audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            help="Expected head SEQ:HASH recorded earlier (detects removed newest records).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the hash chain; name the first modified, removed or reordered record (exit 1)."""
    from ..store.audit import AuditLog

    store = state(ctx).open_store()
    try:
        log = AuditLog(store)
        result = log.verify()
        anchor_problem = None
        if result.ok and head:
            seq_s, _, hash_s = head.partition(":")
            if not seq_s.isdigit() or not hash_s:
                raise typer.BadParameter("--head must be SEQ:HASH as printed by `audit verify`")
            seq = int(seq_s)
            rows = {r.seq: r.hash for r in log.rows(after=seq - 1, batch=1)} if seq > 0 else {}
            if seq > result.head_seq:
                anchor_problem = (
                    f"record {result.head_seq + 1} is missing: the chain ends at "
                    f"{result.head_seq}, expected at least {seq}"
                )
            elif seq > 0 and rows.get(seq) != hash_s:
                anchor_problem = f"record {seq} does not match the recorded head"
    finally:
        store.close()
    if as_json:
        print_json(
            {
                "ok": result.ok and anchor_problem is None,
                "records": result.count,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
                "bad_seq": result.bad_seq,
                "reason": result.reason or anchor_problem,
            }
        )
    elif result.ok and anchor_problem is None:
        console.print(
            f"audit chain intact: {result.count} records; head {result.head_seq}:{result.head_hash}"
        )
    else:
        err_console.print(f"audit chain BROKEN: {result.reason or anchor_problem}")
        if result.bad_seq is not None:
            err_console.print(f"first bad record: {result.bad_seq}")
    if not result.ok or anchor_problem is not None:
        raise typer.Exit(1)


@audit_app.command("list")
def list_records(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    action: Annotated[
        str | None, typer.Option("--action", help="e.g. token.read, auth.failed")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Credential name.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest audit records."""
    from rich.table import Table

    from ..store.audit import AuditLog

    store = state(ctx).open_store()
    try:
        recs = AuditLog(store).list(limit=limit, action=action, target=target)
    finally:
        store.close()
    if as_json:
        print_json([r.to_json() for r in recs])
        return
    table = Table(header_style="bold")
    for col in ("SEQ", "AT (UTC)", "ACTOR", "ACTION", "TARGET", "FROM", "RESULT"):
        table.add_column(col)
    for r in recs:
        table.add_row(
            str(r.seq),
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.actor,
            r.action,
            r.target or "",
            r.source or "",
            r.result,
        )
    console.print(table)
