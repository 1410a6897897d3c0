"""Whole-store snapshots for backups: every table of ``schema.metadata``, read consistently and
loaded into an empty store in one transaction.

Generic over the metadata: every table the migrations create is dumped, in foreign-key order,
with its columns described by a small set of type tags (:data:`TAGS`), so a table added later is
included without a change here. Values are dumped as stored: sealed columns stay sealed.

Reading is one transaction, so concurrent rotations never tear a snapshot:

- SQLite (WAL): one deferred read transaction; the first SELECT fixes the snapshot and writers
  carry on meanwhile.
- PostgreSQL: one ``REPEATABLE READ, READ ONLY`` transaction; rows stream through server-side
  cursors, so memory does not grow with the number of rows.

Loading (:func:`load`) runs in one write transaction on the target: migrate the empty schema to
the snapshot's revision, insert every row, move PostgreSQL sequences past the loaded ids,
migrate to this code's head, then let the caller check and add its own records before commit.
Any failure rolls all of it back, so the target is left as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._exceptions import BackupError, SchemaError, StoreNotEmptyError
from ..crypto import Sealed
from . import engine as eng
from .records import aad_app, aad_secret, aad_version
from .schema import UTCDateTime, metadata

#: Type tags of dumped columns (see :mod:`permatoken.backup.format` for their JSON encoding).
TAGS: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "integer": sa.BigInteger,
    "float": sa.Float,
    "boolean": sa.Boolean,
    "string": sa.Text,
    "bytes": sa.LargeBinary,
    "datetime": UTCDateTime,
    "json": sa.JSON,
}
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class TableLayout:
    """A table as dumped: its name and ``(column, tag)`` pairs in order."""

    name: str
    columns: tuple[tuple[str, str], ...]


def column_tag(column: sa.Column[Any]) -> str:
    """The type tag of a column; a type the backup format cannot carry is refused loudly."""
    t = column.type
    # Most specific first: Boolean and DateTime are not Integers, Text is a String.
    checks: list[tuple[type[Any], str]] = [
        (UTCDateTime, "datetime"),
        (sa.DateTime, "datetime"),
        (sa.Boolean, "boolean"),
        (sa.Integer, "integer"),
        (sa.Float, "float"),
        (sa.JSON, "json"),
        (sa.LargeBinary, "bytes"),
        (sa.String, "string"),
    ]
    for cls, tag in checks:
        if isinstance(t, cls):
            return tag
    raise TypeError(f"column {column.table.name}.{column.name} has type {t!r}, unknown to backups")


def layouts() -> list[TableLayout]:
    """Every table of the metadata, parents before children."""
    return [
        TableLayout(t.name, tuple((c.name, column_tag(c)) for c in t.columns))
        for t in metadata.sorted_tables
    ]


class Snapshot:
    """Rows of every table as they were when the snapshot's transaction began."""

    def __init__(self, conn: sa.Connection, revision: str) -> None:
        self._conn = conn
        self.revision = revision
        self.dialect = conn.dialect.name
        self.tables = layouts()

    def rows(self, layout: TableLayout) -> Iterator[Sequence[Any]]:
        table = metadata.tables[layout.name]
        cols = [table.c[name] for name, _ in layout.columns]
        order = list(table.primary_key.columns) or cols
        result = self._conn.execution_options(yield_per=_BATCH).execute(
            sa.select(*cols).order_by(*order)
        )
        for row in result:
            yield tuple(row)


@contextlib.contextmanager
def read(engine: sa.Engine, url: str) -> Iterator[Snapshot]:
    """One consistent read of the whole store (see the module docstring)."""
    with eng.translated(url), engine.connect() as raw:
        if raw.dialect.name == "postgresql":
            conn = raw.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            conn = raw.execution_options(readonly=True)
        with conn.begin():
            from alembic.runtime.migration import MigrationContext

            # Read inside the transaction: the revision belongs to the same snapshot.
            revision = MigrationContext.configure(conn).get_current_revision()
            if revision is None:
                raise SchemaError("the store is not initialised", hint="run `permatoken init`")
            yield Snapshot(conn, revision)


# --- sealed columns ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedColumns:
    """Where a table keeps an envelope-encrypted value, and the associated data that binds it."""

    ciphertext: str
    wrapped_key: str
    kek_id: str
    aad: Callable[[Mapping[str, Any]], bytes]

    def sealed(self, row: Mapping[str, Any]) -> Sealed:
        return Sealed(row[self.ciphertext], row[self.wrapped_key], row[self.kek_id])


def sealed_columns() -> dict[str, SealedColumns]:
    """Every table holding sealed values, with the associated data the repository binds."""
    from .providers import aad_onboarding

    return {
        "versions": SealedColumns(
            "ciphertext",
            "wrapped_key",
            "kek_id",
            lambda r: aad_version(r["credential_id"], r["version"]),
        ),
        "credential_secrets": SealedColumns(
            "ciphertext",
            "wrapped_key",
            "kek_id",
            lambda r: aad_secret(r["credential_id"], r["name"]),
        ),
        "apps": SealedColumns(
            "secret_ciphertext", "secret_wrapped_key", "secret_kek_id", lambda r: aad_app(r["id"])
        ),
        "onboardings": SealedColumns(
            "ciphertext", "wrapped_key", "kek_id", lambda r: aad_onboarding(r["code_hash"])
        ),
    }


# --- loading ---------------------------------------------------------------------------------


def target_revision(engine: sa.Engine, url: str) -> str | None:
    """The target's schema revision if it may receive a restore; refuse one that holds data."""
    with eng.translated(url):
        revision = eng.current_revision(engine)
        eng._check_known(revision)
        if revision is None:
            eng._refuse_unversioned(engine)
            return None
        with engine.connect() as raw:
            conn = raw.execution_options(readonly=True)
            with conn.begin():
                _refuse_data(conn, url)
    return revision


def _refuse_data(conn: sa.Connection, url: str) -> None:
    present = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
    one = sa.select(sa.literal(1))
    busy = sorted(t for t in present if conn.execute(one.select_from(sa.table(t)).limit(1)).first())
    if busy:
        raise StoreNotEmptyError(
            f"the target store {eng.describe_url(url)} already holds data "
            f"(tables {', '.join(busy)}); restore only fills an empty store",
            hint="point PERMATOKEN_DATABASE_URL (or --database-url) at a new, empty database and "
            "run `permatoken restore FILE` again",
            tables=", ".join(busy),
        )


def revisions() -> list[str]:
    """Every migration revision known to this code, oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(eng._MIGRATIONS))
    return [s.revision for s in reversed(list(ScriptDirectory.from_config(cfg).walk_revisions()))]


def check_revision(revision: str) -> None:
    """Refuse a snapshot from a schema this code does not know (made by a newer permatoken)."""
    if revision not in revisions():
        raise BackupError(
            f"the backup's schema ({revision}) is newer than this permatoken knows "
            f"(head {eng.head_revision()})",
            hint="upgrade permatoken, then run `permatoken restore FILE` again",
            revision=revision,
        )


TableStream = Iterable[tuple[TableLayout, Iterable[Sequence[Any]]]]


def load(
    engine: sa.Engine,
    url: str,
    *,
    revision: str,
    current: str | None,
    tables: TableStream,
    before_commit: Callable[[sa.Connection], None],
) -> dict[str, int]:
    """Fill an empty target (at ``current``) with ``tables`` from a snapshot at ``revision``."""
    from alembic import command

    check_revision(revision)
    order = revisions()
    counts: dict[str, int] = {}
    with eng.translated(url), engine.begin() as conn:
        cfg = eng._alembic_config(conn)
        if current is not None and order.index(current) > order.index(revision):
            # The empty target was initialised by this (newer) code: step its empty tables
            # back to the snapshot's layout, load, and let the migrations carry the rows up.
            command.downgrade(cfg, revision)
        else:
            command.upgrade(cfg, revision)
        _refuse_data(conn, url)  # again, under the write transaction
        present = {t: _columns(conn, t) for t in sa.inspect(conn).get_table_names()}
        loaded: list[TableLayout] = []
        for layout, rows in tables:
            counts[layout.name] = _insert(conn, layout, rows, present)
            loaded.append(layout)
        if conn.dialect.name == "postgresql":
            _fix_sequences(conn, loaded)
        command.upgrade(cfg, "head")
        before_commit(conn)
    return counts


def _columns(conn: sa.Connection, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def _insert(
    conn: sa.Connection,
    layout: TableLayout,
    rows: Iterable[Sequence[Any]],
    present: dict[str, set[str]],
) -> int:
    names = [name for name, _ in layout.columns]
    if layout.name not in present or not set(names) <= present[layout.name]:
        raise BackupError(
            f"the backup's table {layout.name} does not match the schema of its revision",
            hint="run `permatoken backup verify FILE`; restore from another backup",
        )
    target = sa.table(layout.name, *(sa.column(n, TAGS[tag]()) for n, tag in layout.columns))
    stmt = target.insert()
    count = 0
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(dict(zip(names, row, strict=True)))
        if len(batch) >= _BATCH:
            conn.execute(stmt, batch)
            count += len(batch)
            batch = []
    if batch:
        conn.execute(stmt, batch)
        count += len(batch)
    return count


def _fix_sequences(conn: sa.Connection, loaded: Sequence[TableLayout]) -> None:
    """Rows were inserted with their ids: move each serial column's sequence past the largest.

    ``pg_get_serial_sequence`` is NULL for a key without a sequence (``audit_log.seq`` is
    assigned by its appender), and ``setval(NULL, …)`` then does nothing.
    """
    insp = sa.inspect(conn)
    for layout in loaded:
        name, tags = layout.name, dict(layout.columns)
        for col in insp.get_pk_constraint(name).get("constrained_columns") or []:
            if tags.get(col) != "integer":
                continue
            biggest: sa.Select[Any] = sa.select(sa.func.max(sa.column(col))).select_from(
                sa.table(name)
            )
            conn.execute(
                sa.select(
                    sa.func.setval(
                        sa.func.pg_get_serial_sequence(name, col),
                        sa.func.coalesce(biggest.scalar_subquery(), 0) + 1,
                        False,
                    )
                )
            )


__all__ = [
    "TAGS",
    "SealedColumns",
    "Snapshot",
    "TableLayout",
    "check_revision",
    "column_tag",
    "layouts",
    "load",
    "read",
    "revisions",
    "sealed_columns",
    "target_revision",
]
