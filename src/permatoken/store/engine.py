"""Engines for SQLite and PostgreSQL, schema migrations, and translation of driver errors.

SQLite runs in WAL mode with a busy timeout. Write transactions start with ``BEGIN IMMEDIATE``
so two processes never both read-then-upgrade to a write lock (the classic SQLite deadlock);
read-only work passes ``execution_options(readonly=True)`` and gets a plain deferred ``BEGIN``.

A SQLite file deleted or replaced under a running process goes unnoticed by SQLite itself: open
connections keep reading and writing the unlinked inode, and a new connection would create an
empty file. So connections open the file without creating it (``mode=rw``), and every transaction
first checks that the path still names the file the engine opened (:class:`DatabaseFile`, one
``stat``); a deleted or replaced file refuses all work, a read-only one refuses writes, each with
:class:`StoreUnavailableError` (HTTP 503), logged once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)

from .._exceptions import (
    ConfigError,
    ConflictError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    StoreUnreachableError,
)

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r"""^(down_)?revision\s*=\s*(?:["']([^"']+)["']|None)\s*$""", re.M)


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def create_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for ``url``. With ``create=False`` a missing SQLite file (or its directory) is
    refused with "run `permatoken init`" instead of being created empty."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "the database URL is not a URL (--database-url / PERMATOKEN_DATABASE_URL)",
            hint="use sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/db",
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, create=create)
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return sa.create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                connect_args={"connect_timeout": 5, "application_name": "permatoken"},
            )
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ConfigError(
                "PostgreSQL support is not installed",
                hint="pip install 'permatoken[postgres]'",
            ) from exc
    raise ConfigError(
        f"unsupported database {backend!r} (--database-url / PERMATOKEN_DATABASE_URL)",
        hint="permatoken supports sqlite:/// and postgresql+psycopg://",
    )


class DatabaseFile:
    """The SQLite file an engine opened, to notice it deleted, replaced or made read-only."""

    def __init__(self, path: Path) -> None:
        st = os.stat(path)
        self.path = path
        self.identity = (st.st_dev, st.st_ino)
        self._reported: str | None = None
        self._lock = threading.Lock()

    def problem(self) -> tuple[str, str] | None:
        """``(reason, message)`` if the file cannot be used as opened; None when it can."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            found: tuple[str, str] | None = ("gone", "was deleted")
        except OSError as exc:
            found = ("gone", f"cannot be checked ({exc.strerror})")
        else:
            if (st.st_dev, st.st_ino) != self.identity:
                found = ("gone", "was replaced by another file")
            elif not os.access(self.path, os.W_OK):
                found = ("read_only", "is read-only")
            else:
                found = None
        message = f"database file {self.path} {found[1]}" if found else None
        if message != self._reported:
            with self._lock:
                if message != self._reported:
                    self._reported = message
                    if message:
                        log.error("%s since this process opened it: %s", message, _CONSEQUENCE)
                    else:
                        log.warning("database file %s is usable again", self.path)
        return (found[0], message) if found and message else None

    def check(self, *, writing: bool) -> None:
        found = self.problem()
        if found is None or (found[0] == "read_only" and not writing):
            return
        reason, message = found
        raise StoreUnavailableError(
            f"{message} since this process opened it",
            hint="put the file back (or make it writable again) and restart `permatoken serve`"
            if reason == "gone"
            else "make the database file writable by this user again",
            reason=reason,
            path=str(self.path),
        )


_CONSEQUENCE = "writes are refused, /readyz answers 503 and the scheduler pauses"
_FILES: weakref.WeakKeyDictionary[sa.Engine, DatabaseFile] = weakref.WeakKeyDictionary()


def database_file(engine: sa.Engine) -> DatabaseFile | None:
    """The file of a SQLite engine (None for PostgreSQL and in-memory SQLite)."""
    return _FILES.get(engine)


def database_exists(url: str) -> bool:
    """False only for a SQLite file that does not exist yet (PostgreSQL: assumed to)."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return True
    return Path(parsed.database).exists()


def _sqlite_engine(url: sa.URL, *, create: bool) -> sa.Engine:
    guard: DatabaseFile | None = None
    if url.database and url.database != ":memory:" and not url.query.get("uri"):
        path = Path(url.database).absolute()
        if not create and not path.exists():
            raise SchemaError(
                f"permatoken is not initialised: there is no store at {path}",
                hint="run `permatoken init` first (or point --home / PERMATOKEN_HOME at your store)",
                path=str(path),
            )
        # 0700 like `init` makes the home: the key file usually lives next to the database.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            # Ciphertexts only, but still nobody else's business; SQLite gives -wal/-shm the same mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        guard = DatabaseFile(path)
        # Never create the file again: a deleted database must fail, not come back empty.
        url = url.set(
            database="file:" + urllib.parse.quote(str(path)),
            query={"mode": "rw", "uri": "true"},
        )
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    if guard is not None:
        _FILES[engine] = guard

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        if guard is not None:
            guard.check(writing=not readonly)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def translate(exc: Exception, url: str) -> StoreError:
    """A precise, password-free :class:`StoreError` for a driver exception."""
    orig = getattr(exc, "orig", exc)
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if isinstance(exc, IntegrityError) or isinstance(orig, sqlite3.IntegrityError):
        # A constraint refused the write (duplicate name, a second current/pending version):
        # the transaction rolled back. The first line names the constraint, never a value.
        return ConflictError(f"the database refused a conflicting change ({text})", constraint=text)
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        if isinstance(orig, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text or "corrupt" in text
        ):
            return StoreError(
                f"database file {parsed.database} is corrupted or not a permatoken database ({text})",
                hint="restore it from a backup, or move it away and run `permatoken init`",
            )
        if "unable to open" in text:
            return StoreUnreachableError(
                f"cannot open database file {parsed.database} ({text})",
                hint="check that the file and its directory exist and are writable",
            )
        if "locked" in text or "busy" in text:
            return StoreUnavailableError(
                f"database file {parsed.database} is locked by another process ({text})",
                hint="retry; if it lasts, look for a process holding a long transaction",
                reason="locked",
            )
        if "readonly" in text or "read-only" in text:
            return StoreUnavailableError(
                f"database file {parsed.database} is read-only ({text})",
                hint="make the file and its directory writable by this user",
                reason="read_only",
            )
        return StoreError(f"database error on {parsed.database}: {text}")
    if isinstance(exc, OperationalError) and parsed is not None:
        host = parsed.host or "localhost"
        port = parsed.port or 5432
        password = parsed.password
        if password:
            text = text.replace(str(password), "***")
        return StoreUnreachableError(
            f"cannot connect to PostgreSQL at {host}:{port} (database {parsed.database!r}): {text}",
            hint="check that the server runs and PERMATOKEN_DATABASE_URL is right",
            host=host,
            port=port,
        )
    return StoreError(f"database error: {text}")


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        raise translate(exc, url) from exc
    except sqlite3.DatabaseError as exc:
        raise translate(exc, url) from exc


@contextlib.contextmanager
def reading(engine: sa.Engine, url: str) -> Iterator[sa.Connection]:
    """A read-only transaction (a deferred ``BEGIN`` on SQLite), driver errors translated."""
    with translated(url), engine.connect() as raw:
        conn = raw.execution_options(readonly=True)
        with conn.begin():
            yield conn


# --- migrations ---------------------------------------------------------------------


def ping(conn: sa.Connection) -> None:
    """The cheapest statement the database must answer (the readiness check)."""
    conn.execute(sa.text("SELECT 1"))


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    # Read-only: a command checking the schema must not queue behind a writer's lock.
    with engine.connect() as raw:
        conn = raw.execution_options(readonly=True)
        return MigrationContext.configure(conn).get_current_revision()


def known_head() -> str | None:
    """The head revision read from the migration files without Alembic (None when unsure).

    Commands compare the store's ``alembic_version`` with it by a plain query, because importing
    Alembic costs more than the rest of a command; only ``init`` and a mismatch load Alembic.
    """
    revisions, parents = set(), set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(
            ("down" if down else "rev", rev)
            for down, rev in _REVISION_LINE.findall(path.read_text())
        )
        if "rev" not in found or "down" not in found:
            return None
        revisions.add(found["rev"])
        if found["down"]:
            parents.add(found["down"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: sa.Engine) -> str | None:
    """The store's revision by a plain query; None when there is no (single) version row."""
    with engine.connect() as raw:
        conn = raw.execution_options(readonly=True)  # SQLite: no write lock for a look
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Run pending migrations; returns (before, after)."""
    from alembic import command

    before = current_revision(engine)
    _check_known(before)
    if before is None:
        _refuse_unversioned(engine)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    return before, head_revision()


def _check_known(rev: str | None) -> None:
    from alembic.script import ScriptDirectory

    if rev is None:
        return
    script = ScriptDirectory.from_config(_alembic_config())
    try:
        script.get_revision(rev)
    except Exception:
        raise SchemaError(
            f"the store's schema ({rev}) is newer than this permatoken knows (head {head_revision()})",
            hint="upgrade permatoken; never run an older version against a newer store",
            revision=rev,
        ) from None


def check_schema(engine: sa.Engine) -> str:
    """Refuse a store that is not initialised, older, or newer than this code."""
    head = known_head()
    if head is not None and _stored_revision(engine) == head:
        return head
    rev = current_revision(engine)
    head = head_revision()
    if rev == head:
        return rev
    if rev is None:
        _refuse_unversioned(engine)
        raise SchemaError(
            "the store is not initialised",
            hint="run `permatoken init`",
        )
    _check_known(rev)
    raise SchemaError(
        f"the store's schema is at {rev}, this permatoken needs {head}",
        hint="back up, then run `permatoken init` to upgrade the schema",
        revision=rev,
    )


def _refuse_unversioned(engine: sa.Engine) -> None:
    """Permatoken tables without a schema version: unknown layout, never guess or re-create."""
    from .schema import metadata

    present = set(sa.inspect(engine).get_table_names()) & set(metadata.tables)
    if present:
        raise SchemaError(
            f"the database has permatoken tables ({', '.join(sorted(present))}) but no schema "
            "version (alembic_version), so its layout is unknown",
            hint="restore it from a backup, or point PERMATOKEN_DATABASE_URL at an empty database "
            "and run `permatoken init`",
        )
