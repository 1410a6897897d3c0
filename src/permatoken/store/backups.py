"""The backup log: which backups were taken, which failed, and who takes each scheduled one.

A scheduled period is claimed by inserting its row with a unique ``slot``; the insert that
lands first wins (across threads, processes and replicas, on SQLite and PostgreSQL alike) and
every other claimant gets ``None`` and skips the period. A replica that dies mid-backup leaves
its row ``running``: that period has no backup, the next period is claimed afresh, and the age
of the last good backup (what status and metrics show) keeps growing meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import ConflictError
from ..timeutil import ensure_utc
from .schema_backup import backups

if TYPE_CHECKING:
    from .repository import Store


@dataclass(frozen=True, slots=True)
class BackupRecord:
    id: int
    kind: str
    state: str
    owner: str
    started_at: datetime
    finished_at: datetime | None
    path: str | None
    size: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        from ..timeutil import isoformat

        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "owner": self.owner,
            "started_at": isoformat(self.started_at),
            "finished_at": isoformat(self.finished_at),
            "path": self.path,
            "size": self.size,
            "error": self.error,
        }


class BackupLog:
    """Reads and writes the ``backups`` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, kind: str, owner: str, now: datetime, *, slot: str | None = None) -> int | None:
        """Record a backup as started; ``None`` if ``slot`` was already claimed by anyone."""
        try:
            with self.store.write() as conn:
                return int(
                    conn.execute(
                        backups.insert()
                        .values(
                            kind=kind, slot=slot, state="running", owner=owner[:80], started_at=now
                        )
                        .returning(backups.c.id)
                    ).scalar_one()
                )
        except ConflictError:
            if slot is None:
                raise
            return None

    def finish(self, backup_id: int, now: datetime, *, ok: bool, **outcome: Any) -> None:
        """Record how a claimed backup ended (``path``, ``size``, ``sha256``, ``counts``, ``error``)."""
        with self.store.write() as conn:
            conn.execute(
                backups.update()
                .where(backups.c.id == backup_id)
                .values(**_outcome(ok, now, **outcome))
            )

    def record(
        self, kind: str, owner: str, started: datetime, now: datetime, *, ok: bool, **outcome: Any
    ) -> None:
        """Record a finished backup in one insert (manual ones: taken before they are logged,
        so a backup never contains its own unfinished row)."""
        with self.store.write() as conn:
            conn.execute(
                backups.insert().values(
                    kind=kind, owner=owner[:80], started_at=started, **_outcome(ok, now, **outcome)
                )
            )

    def last(self, *, state: str | None = "ok") -> BackupRecord | None:
        """The newest backup (finished ``ok`` by default; ``state=None`` for any)."""
        q = sa.select(backups).order_by(backups.c.started_at.desc(), backups.c.id.desc()).limit(1)
        if state is not None:
            q = q.where(backups.c.state == state)
        with self.store.read() as conn:
            row = conn.execute(q).mappings().first()
        return _record(row) if row is not None else None


def _outcome(
    ok: bool,
    now: datetime,
    *,
    path: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    counts: Mapping[str, int] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "state": "ok" if ok else "failed",
        "finished_at": now,
        "path": path,
        "size": size,
        "sha256": sha256,
        "counts": dict(counts) if counts is not None else None,
        "error": error[:2000] if error else None,
    }


def _record(r: Mapping[Any, Any]) -> BackupRecord:
    started = ensure_utc(r["started_at"])
    assert started is not None
    return BackupRecord(
        id=r["id"],
        kind=r["kind"],
        state=r["state"],
        owner=r["owner"],
        started_at=started,
        finished_at=ensure_utc(r["finished_at"]),
        path=r["path"],
        size=r["size"],
        error=r["error"],
    )


__all__ = ["BackupLog", "BackupRecord"]
