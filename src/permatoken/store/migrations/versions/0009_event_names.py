"""event_names: the event log says ``credential.created``, as the audit log always has

Until this revision the event log wrote ``credential.added`` for the change the audit log calls
``credential.created``. The event kinds are one list now (``permatoken.events.EventKind``), so
the older rows are renamed; a restored backup made before this revision is carried up by it too.

Revision ID: 0009_event_names
Revises: 0008_fleet
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_event_names"
down_revision = "0008_fleet"
branch_labels = None
depends_on = None

_events = sa.table("events", sa.column("kind", sa.String))


def _rename(old: str, new: str) -> None:
    op.execute(_events.update().where(_events.c.kind == old).values(kind=new))


def upgrade() -> None:
    _rename("credential.added", "credential.created")


def downgrade() -> None:
    _rename("credential.created", "credential.added")
