"""Credential status one page at a time, by name (keyset pagination).

``WHERE name > :after ORDER BY name LIMIT :n`` walks the unique index on ``credentials.name``,
so a page costs the same at the first credential and at the 100,000th (an ``OFFSET`` reads and
throws away every row before it). The current version of each row comes in the same statement.
Used by ``permatoken status`` (which streams every page) and ``GET /v1/credentials``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa

from ..models import CredentialStatus
from .records import credential_record, version_record
from .repository import Store
from .schema import credentials, versions

#: Rows read per statement when a caller streams every page.
PAGE = 1000


def count_credentials(store: Store, *, tenant: str | None = None, health: str | None = None) -> int:
    """How many credentials (of ``tenant``, with ``health``) there are: the total of a first page."""
    q = sa.select(sa.func.count()).select_from(credentials)
    if tenant is not None:
        q = q.where(credentials.c.tenant == tenant)
    if health is not None:
        q = q.where(credentials.c.health == health)
    with store.read() as conn:
        return int(conn.execute(q).scalar() or 0)


def _escape_like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def status_page(
    store: Store,
    *,
    after: str | None = None,
    limit: int = 100,
    tenant: str | None = None,
    health: str | None = None,
    prefixes: Sequence[str] = (),
) -> list[CredentialStatus]:
    """Up to ``limit`` credentials with names after ``after``, in name order.

    ``health`` filters on the stored health; ``prefixes`` (the literal part of grants, see
    ``server.metrics.literal_prefix``) narrows the range read for grant-limited callers.
    """
    cur = versions.alias("cur")
    q = (
        sa.select(credentials, *[c.label(f"v_{c.name}") for c in cur.c])
        .select_from(
            credentials.outerjoin(
                cur, sa.and_(cur.c.credential_id == credentials.c.id, cur.c.state == "current")
            )
        )
        .order_by(credentials.c.name)
        .limit(limit)
    )
    if after is not None:
        q = q.where(credentials.c.name > after)
    if tenant is not None:
        q = q.where(credentials.c.tenant == tenant)
    if health is not None:
        q = q.where(credentials.c.health == health)
    if prefixes and "" not in prefixes:
        q = q.where(
            sa.or_(*[credentials.c.name.like(_escape_like(p) + "%", escape="\\") for p in prefixes])
        )
    out = []
    with store.read() as conn:
        for r in conn.execute(q).mappings():
            vrow = {c.name: r[f"v_{c.name}"] for c in cur.c}
            current = version_record(vrow) if vrow["id"] is not None else None
            cred = credential_record(r, current.version if current else None)
            out.append(CredentialStatus(cred, current))
    return out


def visible_page(
    store: Store,
    sees: Callable[[str], bool],
    *,
    after: str | None,
    limit: int,
    tenant: str | None = None,
    health: str | None = None,
    prefixes: Sequence[str] = (),
) -> tuple[list[CredentialStatus], bool]:
    """Up to ``limit`` credentials that ``sees`` accepts, and whether more follow."""
    found: list[CredentialStatus] = []
    cursor = after
    while True:
        chunk = status_page(
            store,
            after=cursor,
            limit=max(limit + 1, 200),
            tenant=tenant,
            health=health,
            prefixes=prefixes,
        )
        for row in chunk:
            if sees(row.credential.name):
                if len(found) == limit:
                    return found, True
                found.append(row)
        if len(chunk) < max(limit + 1, 200):
            return found, False
        cursor = chunk[-1].credential.name


def every_status(
    store: Store, *, tenant: str | None = None, page: int | None = None
) -> Iterator[CredentialStatus]:
    """Every credential in name order, read ``page`` (default :data:`PAGE`) rows at a time."""
    page = page or PAGE
    after: str | None = None
    while True:
        rows = status_page(store, after=after, limit=page, tenant=tenant)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].credential.name


__all__ = ["PAGE", "every_status", "status_page", "visible_page"]
