"""The dashboard's questions to the store: fleet counts, one page, expiries by day, the queue.

Every question is one indexed query whose cost follows the page, not the fleet, as far as SQL
allows: counts are one ``COUNT … GROUP BY health`` (index ``ix_credentials_health``), a page one
``SELECT … ORDER BY name LIMIT``, the timeline one ``GROUP BY`` day over
``ix_versions_state_expires_at``.

A key's grants are applied in SQL (:func:`grant_clause`): a grant pattern becomes a ``LIKE``
with the same number of ``/`` as the pattern (so ``*`` and ``?`` cannot cross a segment), which
is exact for every pattern without ``[…]`` classes and without wildcards before a final ``**``.
Other patterns give a superset in SQL that is narrowed in Python with the API's own rule
(:func:`~permatoken.access.covers`), over at most :data:`FALLBACK_LIMIT` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .repository import Store
from .schema import credentials, versions

#: Rows narrowed in Python when a grant cannot be expressed exactly in SQL.
FALLBACK_LIMIT = 20_000

_SLASHES = sa.func.length(credentials.c.name) - sa.func.length(
    sa.func.replace(credentials.c.name, "/", "")
)


def _like(segment_glob: str) -> str | None:
    """A glob over one or more segments as a LIKE pattern (``\\`` escapes), None if it has […]."""
    if "[" in segment_glob or "]" in segment_glob:
        return None
    out = []
    for ch in segment_glob:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def grant_clause(pattern: str) -> tuple[sa.ColumnElement[bool], bool]:
    """The SQL condition for one grant pattern and whether it is exact (else a superset)."""
    parts = pattern.split("/")
    if parts[-1] == "**":
        head = "/".join(parts[:-1])
        if not head:  # a lone ** reaches every name
            return sa.true(), True
        like = _like(head)
        if like is None:
            return sa.true(), False
        exact = not any(c in head for c in "*?")
        cond = sa.and_(
            credentials.c.name.like(like + "/%", escape="\\"), _SLASHES >= len(parts) - 1
        )
        return cond, exact
    like = _like(pattern)
    if like is None:
        return sa.true(), False
    if not any(c in pattern for c in "*?"):
        return credentials.c.name == pattern, True
    # As many '/' in the name as in the pattern: a wildcard can then absorb none of them.
    return sa.and_(credentials.c.name.like(like, escape="\\"), _SLASHES == len(parts) - 1), True


def grants_clause(grants: Sequence[str]) -> tuple[sa.ColumnElement[bool] | None, bool]:
    """All grants ORed (None: no grants, everything), and whether that is exact."""
    if not grants:
        return None, True
    pairs = [grant_clause(g) for g in grants]
    return sa.or_(*(c for c, _ in pairs)), all(e for _, e in pairs)


@dataclass(frozen=True)
class FleetFilter:
    tenant: str | None = None
    health: str | None = None
    issuer: str | None = None
    text: str | None = None

    def clauses(self, dialect: str = "sqlite") -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        if self.tenant:
            out.append(credentials.c.tenant == self.tenant)
        if self.health:
            out.append(credentials.c.health == self.health)
        if self.issuer:
            out.append(credentials.c.issuer == self.issuer)
        if self.text:
            # Digits: an exact phone number or business id; else a name prefix. Both are index
            # lookups (a substring search would read every name of the fleet).
            text = self.text
            if text.isdigit():
                out.append(
                    sa.or_(credentials.c.phone_number_id == text, credentials.c.business_id == text)
                )
            elif dialect == "sqlite":  # byte order: a range on the name index
                upper = text[:-1] + chr(min(ord(text[-1]) + 1, 0x10FFFF))
                out.append(sa.and_(credentials.c.name >= text, credentials.c.name < upper))
            else:  # collations need not sort by bytes: LIKE says "starts with" exactly
                like = (_like(text.replace("*", "").replace("?", "")) or "") + "%"
                out.append(credentials.c.name.like(like, escape="\\"))
        return out


@dataclass
class FleetRow:
    name: str
    tenant: str
    issuer: str
    health: str
    health_reason: str | None
    version: int | None
    token_type: str | None
    expires_at: datetime | None
    next_due_at: datetime | None
    next_action: str | None


@dataclass
class Fleet:
    """What the overview shows for one filter and one page."""

    counts: dict[str, int]
    total: int
    rows: list[FleetRow]
    #: Per day from today: current versions expiring, planned renewals.
    expiring: list[int] = field(default_factory=list)
    renewing: list[int] = field(default_factory=list)
    #: True when the grants were narrowed in Python and more than FALLBACK_LIMIT rows matched.
    truncated: bool = False


_PAGE_COLS = (
    credentials.c.name,
    credentials.c.tenant,
    credentials.c.issuer,
    credentials.c.health,
    credentials.c.health_reason,
    credentials.c.next_due_at,
    credentials.c.next_action,
    versions.c.version,
    versions.c.token_type,
    versions.c.expires_at,
)
_WITH_CURRENT = credentials.outerjoin(
    versions,
    sa.and_(versions.c.credential_id == credentials.c.id, versions.c.state == "current"),
)


def _row(r: Any) -> FleetRow:
    return FleetRow(
        r.name,
        r.tenant,
        r.issuer,
        r.health,
        r.health_reason,
        r.version,
        r.token_type,
        r.expires_at,
        r.next_due_at,
        r.next_action,
    )


def _day_expr(column: Any, now: datetime, dialect: str) -> Any:
    """Whole days from ``now`` to ``column`` (rounded down), in SQL."""
    if dialect == "sqlite":
        return sa.cast(sa.func.julianday(column) - sa.func.julianday(now), sa.Integer)
    seconds = sa.func.extract("epoch", column - sa.literal(now, type_=sa.DateTime(timezone=True)))
    return sa.cast(sa.func.floor(seconds / 86400), sa.Integer)


@dataclass(frozen=True)
class Summary:
    """Counts by health and the per-day series: the parts of the overview that scan the fleet."""

    counts: dict[str, int]
    expiring: list[int]
    renewing: list[int]
    #: The grants were narrowed in Python and more than FALLBACK_LIMIT rows matched.
    truncated: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _conditions(
    store: Store, flt: FleetFilter, grants: Sequence[str]
) -> tuple[list[sa.ColumnElement[bool]], bool]:
    where, exact = grants_clause(grants)
    conds = flt.clauses(store.dialect)
    if where is not None:
        conds.append(where)
        if store.dialect == "sqlite":
            # LIKE cannot use the name index in SQLite; a byte-order range on the grants' common
            # literal prefix can (PostgreSQL collations do not promise byte order: not there).
            rng = _prefix_range(grants)
            if rng is not None:
                conds.append(rng)
    return conds, exact


def _prefix_range(grants: Sequence[str]) -> sa.ColumnElement[bool] | None:
    prefixes = []
    for g in grants:
        cut = min([g.index(c) for c in "*?[" if c in g] or [len(g)])
        prefixes.append(g[:cut])
    common = prefixes[0]
    for p in prefixes[1:]:
        while not p.startswith(common):
            common = common[:-1]
    if not common or ord(common[-1]) >= 0x10FFFF:
        return None
    upper = common[:-1] + chr(ord(common[-1]) + 1)
    return sa.and_(credentials.c.name >= common, credentials.c.name < upper)


def fleet_summary(
    store: Store, flt: FleetFilter, grants: Sequence[str], *, now: datetime, days: int = 90
) -> Summary:
    """One COUNT … GROUP BY health and two GROUP BY day queries, within ``grants``."""
    conds, exact = _conditions(store, flt, grants)
    if not exact:
        f = _fleet_narrowed(store, grants, conds, now=now, offset=0, limit=0, days=days)
        return Summary(f.counts, f.expiring, f.renewing, f.truncated)
    end = now + timedelta(days=days)
    with store.read() as conn:
        counts_q = sa.select(credentials.c.health, sa.func.count()).group_by(credentials.c.health)
        counts_q = counts_q.where(*conds) if conds else counts_q
        counts = {h: int(n) for h, n in conn.execute(counts_q)}
        if not conds:
            # The whole fleet: a range count per day on a covering index reads each entry once
            # and computes nothing per row (a GROUP BY day would, for every credential).
            expiring = _daily(conn, versions.c.expires_at, versions.c.state == "current", now, days)
            renewing = _daily(
                conn,
                credentials.c.next_due_at,
                credentials.c.next_action == "renew",
                now,
                days,
                overdue_today=True,
            )
            return Summary(counts, expiring, renewing)
        day = _day_expr(versions.c.expires_at, now, store.dialect)
        exp_q = (
            sa.select(day, sa.func.count())
            .where(
                versions.c.state == "current",
                versions.c.expires_at >= now,
                versions.c.expires_at < end,
            )
            .group_by(day)
            # Driven by the matching credentials (their index), not by every expiry in the
            # window: SQLite otherwise looks up one credential per version (10x slower).
            .where(versions.c.credential_id.in_(sa.select(credentials.c.id).where(*conds)))
        )
        expiring = _by_day(conn.execute(exp_q), days)
        due = _day_expr(credentials.c.next_due_at, now, store.dialect)
        ren_q = (
            sa.select(due, sa.func.count())
            .where(credentials.c.next_action == "renew", credentials.c.next_due_at < end, *conds)
            .group_by(due)
        )
        renewing = _by_day(conn.execute(ren_q), days, clamp_past=True)
    return Summary(counts, expiring, renewing)


def fleet_page(
    store: Store, flt: FleetFilter, grants: Sequence[str], *, offset: int, limit: int
) -> list[FleetRow]:
    """One page by name: ``SELECT … ORDER BY name LIMIT`` over the name index."""
    conds, exact = _conditions(store, flt, grants)
    if not exact:
        now = store.clock.now()
        return _fleet_narrowed(
            store, grants, conds, now=now, offset=offset, limit=limit, days=1
        ).rows
    page_q = (
        sa.select(*_PAGE_COLS)
        .select_from(_WITH_CURRENT)
        .where(*conds)
        .order_by(credentials.c.name)
        .limit(limit)
        .offset(offset)
    )
    with store.read() as conn:
        return [_row(r) for r in conn.execute(page_q)]


def fleet(
    store: Store,
    flt: FleetFilter,
    grants: Sequence[str],
    *,
    now: datetime,
    offset: int,
    limit: int,
    days: int = 90,
) -> Fleet:
    """Counts by health, one page by name, and the expiry timeline, within ``grants``."""
    conds, exact = _conditions(store, flt, grants)
    if not exact:
        return _fleet_narrowed(store, grants, conds, now=now, offset=offset, limit=limit, days=days)
    s = fleet_summary(store, flt, grants, now=now, days=days)
    rows = fleet_page(store, flt, grants, offset=offset, limit=limit)
    return Fleet(s.counts, s.total, rows, s.expiring, s.renewing)


def _daily(
    conn: sa.Connection,
    column: Any,
    where: sa.ColumnElement[bool],
    now: datetime,
    days: int,
    *,
    overdue_today: bool = False,
) -> list[int]:
    """Per day from ``now``: how many rows have ``column`` in that day (one indexed count each)."""
    lo, hi = sa.bindparam("lo", type_=column.type), sa.bindparam("hi", type_=column.type)
    ranged = sa.select(sa.func.count()).where(where, column >= lo, column < hi)
    upto = sa.select(sa.func.count()).where(where, column < hi)
    out = []
    for d in range(days):
        start, stop = now + timedelta(days=d), now + timedelta(days=d + 1)
        if d == 0 and overdue_today:
            out.append(int(conn.execute(upto, {"hi": stop}).scalar() or 0))
        else:
            out.append(int(conn.execute(ranged, {"lo": start, "hi": stop}).scalar() or 0))
    return out


def _by_day(result: Any, days: int, *, clamp_past: bool = False) -> list[int]:
    out = [0] * days
    for d, n in result:
        if d is None:
            continue
        d = int(d)
        if d < 0 and clamp_past:
            d = 0  # overdue: shown as due today
        if 0 <= d < days:
            out[d] += int(n)
    return out


def _fleet_narrowed(
    store: Store,
    grants: Sequence[str],
    conds: list[sa.ColumnElement[bool]],
    *,
    now: datetime,
    offset: int,
    limit: int,
    days: int,
) -> Fleet:
    from ..access import Role, covers

    q = (
        sa.select(*_PAGE_COLS)
        .select_from(_WITH_CURRENT)
        .where(*conds)
        .order_by(credentials.c.name)
        .limit(FALLBACK_LIMIT + 1)
    )
    with store.read() as conn:
        found = [_row(r) for r in conn.execute(q)]
    truncated = len(found) > FALLBACK_LIMIT
    mine = [r for r in found[:FALLBACK_LIMIT] if covers(Role.READER, tuple(grants), r.name)]
    counts: dict[str, int] = {}
    expiring, renewing = [0] * days, [0] * days
    for r in mine:
        counts[r.health] = counts.get(r.health, 0) + 1
        if r.expires_at is not None:
            d = int((r.expires_at - now).total_seconds() // 86400)
            if 0 <= d < days:
                expiring[d] += 1
        if r.next_action == "renew" and r.next_due_at is not None:
            d = max(0, int((r.next_due_at - now).total_seconds() // 86400))
            if d < days:
                renewing[d] += 1
    return Fleet(counts, len(mine), mine[offset : offset + limit], expiring, renewing, truncated)


def issuers(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(sa.select(credentials.c.issuer).distinct().limit(50))]


__all__ = [
    "FALLBACK_LIMIT",
    "Fleet",
    "FleetFilter",
    "FleetRow",
    "Summary",
    "fleet",
    "fleet_page",
    "fleet_summary",
    "grant_clause",
    "grants_clause",
    "issuers",
]
