"""Leases on credentials: who may rotate (or otherwise work on) a credential right now.

A lease is two columns on the credential row, taken with one conditional UPDATE, so it works
the same on SQLite and PostgreSQL and across threads, processes and replicas. A lease expires,
so work held by a process that died is taken over. Step updates are fenced: they only apply
while the writer still holds the lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .._exceptions import ConflictError
from .schema import credentials


class LeaseMixin:
    """Mixed into :class:`~permatoken.store.repository.Store`."""

    write: Any
    read: Any
    _now: Any

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now: datetime = self._now()
        with self.write() as conn:
            res = conn.execute(
                credentials.update()
                .where(
                    credentials.c.name == name,
                    sa.or_(
                        credentials.c.lease_owner.is_(None),
                        credentials.c.lease_owner == owner,
                        credentials.c.lease_expires_at < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=ttl))
            )
            return bool(res.rowcount)

    def release_lease(self, name: str, owner: str) -> None:
        with self.write() as conn:
            conn.execute(
                credentials.update()
                .where(credentials.c.name == name, credentials.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def lease_holder(self, name: str) -> tuple[str | None, datetime | None]:
        with self.read() as conn:
            row = conn.execute(
                sa.select(credentials.c.lease_owner, credentials.c.lease_expires_at).where(
                    credentials.c.name == name
                )
            ).first()
        return (row[0], row[1]) if row else (None, None)

    def set_rotation(
        self,
        name: str,
        owner: str,
        step: str | None,
        detail: dict[str, Any] | None,
        *,
        ttl: float | None = None,
        **fields: Any,
    ) -> None:
        """Persist the rotation step (and other columns) only while ``owner`` holds the lease.

        While a step is in progress the credential is due when the lease expires: if the worker
        dies (an API rotation as much as a scheduled one), the scheduler claims it then and
        resumes, instead of waiting for the next planned renewal or a restart.
        """
        now: datetime = self._now()
        values: dict[str, Any] = {
            "rotation_step": step,
            "rotation_detail": detail,
            "updated_at": now,
            **fields,
        }
        if ttl is not None:
            values["lease_expires_at"] = now + timedelta(seconds=ttl)
            if step is not None and "next_due_at" not in fields:
                values["next_due_at"] = values["lease_expires_at"]
        if "health" in values and hasattr(values["health"], "value"):
            values["health"] = values["health"].value
        with self.write() as conn:
            res = conn.execute(
                credentials.update()
                .where(credentials.c.name == name, credentials.c.lease_owner == owner)
                .values(**values)
            )
            if not res.rowcount:
                raise ConflictError(
                    f"lost the lease on {name!r}; another worker took over", name=name
                )

    def rotation_detail(self, name: str) -> dict[str, Any] | None:
        """The detail (attempt, versions, last error) of the rotation step stored on ``name``."""
        with self.read() as conn:
            detail: dict[str, Any] | None = conn.execute(
                sa.select(credentials.c.rotation_detail).where(credentials.c.name == name)
            ).scalar()
        return detail

    def unfinished_rotations(self) -> list[str]:
        with self.read() as conn:
            return list(
                conn.execute(
                    sa.select(credentials.c.name)
                    .where(credentials.c.rotation_step.is_not(None))
                    .order_by(credentials.c.name)
                ).scalars()
            )
