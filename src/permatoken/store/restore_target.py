"""The store a backup is restored into: opened empty, filled in one transaction, or discarded.

The SQL side of :mod:`permatoken.backup.restore`, which reads and checks the backup file and
decides the keys; this module checks that the target holds no data, loads the rows through
:func:`.snapshot.load` (one transaction: a failure rolls all of it back) and appends the
``backup.restored`` event and audit record before commit. A SQLite file that the restore itself
created is removed again when the restore fails, so a refused restore leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..crypto import Keyring
from ..events import EventKind
from . import engine as eng
from . import snapshot
from .audit import AuditLog, AuditRecord
from .repository import Store


def _new_sqlite_file(url: str) -> Path | None:
    """The SQLite file opening ``url`` will create (to remove it again on failure), if any."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    return None if path.exists() or parsed.database == ":memory:" else path


class RestoreTarget:
    """The (empty) store at ``url`` that a restore fills. Close it, or discard it on failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._created_file = _new_sqlite_file(url)  # before the engine can create it
        self._engine = eng.create_engine(url)
        self._revision: str | None = None

    @property
    def description(self) -> str:
        """The target as shown to people (a URL without its password)."""
        return eng.describe_url(self.url)

    def refuse_data(self) -> None:
        """Refuse (:class:`StoreNotEmptyError`) a target holding any row; note its schema revision."""
        self._revision = snapshot.target_revision(self._engine, self.url)

    def load(
        self,
        *,
        revision: str,
        tables: snapshot.TableStream,
        keyring: Keyring,
        actor: str,
        detail: Mapping[str, Any],
    ) -> dict[str, int]:
        """Load ``tables`` (a snapshot at ``revision``) and record the restore, in one transaction;
        answers the row count of each table."""
        store = Store(self._engine, keyring, url=self.url)

        def before_commit(conn: sa.Connection) -> None:
            store.record(conn, EventKind.BACKUP_RESTORED, actor=actor, detail=detail)
            record = AuditRecord(actor=actor, action="backup.restored", result="ok", detail=detail)
            AuditLog(store).append_in(conn, [record])

        return snapshot.load(
            self._engine,
            self.url,
            revision=revision,
            current=self._revision,
            tables=tables,
            before_commit=before_commit,
        )

    def close(self) -> None:
        self._engine.dispose()

    def discard(self) -> None:
        """Close, and remove the SQLite file (with its journals) if this restore created it."""
        self.close()
        if self._created_file is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    Path(str(self._created_file) + suffix).unlink()


__all__ = ["RestoreTarget"]
