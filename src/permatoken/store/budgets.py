"""Call budgets shared between replicas: calls spent per key per time bucket (``budget_spend``).

The decisions (what fits, when it will) are the scheduler's (:mod:`permatoken.scheduler.budgets`);
these are the statements it runs inside one write transaction. A key's current bucket row is
locked (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite) before its window is read, and keys
are always taken in sorted order by the caller, so replicas never deadlock.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema_scheduler import budget_spend


def locked_window(
    conn: sa.Connection, dialect: str, key: str, bucket: int, first: int
) -> list[tuple[int, int]]:
    """Lock ``key``'s row for ``bucket`` (made if missing); its (bucket, calls) from ``first`` on."""
    _ensure_row(conn, dialect, key, bucket)
    conn.execute(
        sa.select(budget_spend.c.calls)
        .where(budget_spend.c.key == key, budget_spend.c.bucket == bucket)
        .with_for_update()
    )
    return [
        (int(b), int(n))
        for b, n in conn.execute(
            sa.select(budget_spend.c.bucket, budget_spend.c.calls)
            .where(budget_spend.c.key == key, budget_spend.c.bucket >= first)
            .order_by(budget_spend.c.bucket)
        ).all()
    ]


def add_spend(conn: sa.Connection, key: str, bucket: int, calls: int) -> None:
    conn.execute(
        budget_spend.update()
        .where(budget_spend.c.key == key, budget_spend.c.bucket == bucket)
        .values(calls=budget_spend.c.calls + calls)
    )


def forget_before(conn: sa.Connection, bucket: int) -> None:
    conn.execute(budget_spend.delete().where(budget_spend.c.bucket < bucket))


def spent_since(conn: sa.Connection, key: str, first: int) -> int:
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(budget_spend.c.calls), 0)).where(
            budget_spend.c.key == key, budget_spend.c.bucket >= first
        )
    ).scalar_one()
    return int(total)


def _ensure_row(conn: sa.Connection, dialect: str, key: str, bucket: int) -> None:
    values = {"key": key, "bucket": bucket, "calls": 0}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(budget_spend).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(budget_spend).values(values).on_conflict_do_nothing())


__all__ = ["add_spend", "forget_before", "locked_window", "spent_since"]
