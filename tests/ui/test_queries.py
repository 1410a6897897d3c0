"""store/ui_queries.py against a real database: grants in SQL agree with the API's rule."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import sqlalchemy as sa

from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.server.access import Role, covers
from permatoken.store import ui_queries as q
from permatoken.store.schema import credentials

NAMES = [
    "acme/messaging",
    "acme/eu/messaging",
    "acme/eu/ops/x",
    "acmecorp/x",
    "acme_x/y",
    "acme%/y",
    "acme",
    "globex/messaging",
    "globex/a.b",
    "a/b/c/d",
    "ab/c",
    "a1/b",
]
PATTERNS = [
    "acme/*",
    "acme/**",
    "acme/eu/*",
    "acme/*/messaging",
    "acm?/*",
    "acme_x/*",
    "*/messaging",
    "a*/**",
    "a?/**",
    "*",
    "**",
    "globex/a.b",
    "acme",
    "a[0-9]/*",
    "*/*/**",
    "a/*/c/**",
]


@pytest.fixture
def names(store: Any) -> list[str]:
    for n in NAMES:
        if "%" in n:  # not a valid credential name: inserted directly, as an escaping check
            continue
        store.add_credential(
            NewCredential(name=n, issuer="manual"), Secret("x" * 40), VersionMeta()
        )
    return [n for n in NAMES if "%" not in n]


def _sql_names(store: Any, grants: tuple[str, ...]) -> set[str]:
    where, _ = q.grants_clause(grants)
    query = sa.select(credentials.c.name)
    if where is not None:
        query = query.where(where)
    with store.read() as conn:
        return {r[0] for r in conn.execute(query)}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_grant_in_sql_matches_what_the_api_rule_matches(
    store: Any, names: list[str], pattern: str
) -> None:
    """Exact patterns select exactly the API's names; the rest a superset (narrowed in Python)."""
    expected = {n for n in names if covers(Role.READER, (pattern,), n)}
    _, exact = q.grant_clause(pattern)
    found = _sql_names(store, (pattern,))
    if exact:
        assert found == expected
    else:
        assert found >= expected


def test_random_grant_sets_page_and_count_exactly(store: Any, names: list[str]) -> None:
    """fleet() counts and pages exactly the names the API would show, for any mix of grants."""
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    for _ in range(25):
        grants = tuple(rng.sample(PATTERNS, rng.randint(1, 3)))
        expected = sorted(n for n in names if covers(Role.READER, grants, n))
        fleet = q.fleet(store, q.FleetFilter(), grants, now=now, offset=0, limit=1000)
        assert [r.name for r in fleet.rows] == expected, grants
        assert fleet.total == len(expected), grants
        page2 = q.fleet(store, q.FleetFilter(), grants, now=now, offset=2, limit=3)
        assert [r.name for r in page2.rows] == expected[2:5]


def test_timeline_counts_expiries_and_planned_renewals_by_day(store: Any) -> None:
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    for i, days in enumerate((0.5, 3.2, 3.9, 89.9, 95, -1)):
        name = f"t/c{i}"
        store.add_credential(
            NewCredential(name=name, issuer="manual"),
            Secret("y" * 40),
            VersionMeta(expires_at=now + dt.timedelta(days=days)),
        )
        store.update_credential(
            name, next_due_at=now + dt.timedelta(days=days - 2), next_action="renew"
        )
    fleet = q.fleet(store, q.FleetFilter(), ("t/*",), now=now, offset=0, limit=10)
    assert fleet.expiring[0] == 1 and fleet.expiring[3] == 2 and fleet.expiring[89] == 1
    assert sum(fleet.expiring) == 4  # 95 d is beyond, -1 d already expired
    # Overdue renewals count as due today; 1.2 d and 1.9 d fall on day 1.
    assert fleet.renewing[0] == 2 and fleet.renewing[1] == 2 and fleet.renewing[87] == 1
    assert sum(fleet.renewing) == 5
    # Without grants or filters the series come from per-day range counts: the same answer.
    whole = q.fleet_summary(store, q.FleetFilter(), (), now=now)
    assert (whole.expiring, whole.renewing) == (fleet.expiring, fleet.renewing)


def test_search_is_a_name_prefix_or_an_exact_phone_number(store: Any, names: list[str]) -> None:
    store.update_credential("globex/a.b", phone_number_id="15550009999")
    now = dt.datetime.now(dt.UTC)

    def found(text: str, grants: tuple[str, ...] = ()) -> list[str]:
        f = q.fleet(store, q.FleetFilter(text=text), grants, now=now, offset=0, limit=100)
        return [r.name for r in f.rows]

    assert found("acme/e") == ["acme/eu/messaging", "acme/eu/ops/x"]
    assert found("acme_") == ["acme_x/y"]  # "_" is no wildcard
    assert found("15550009999") == ["globex/a.b"]
    assert found("15550009999", ("acme/**",)) == []
    assert found("1555") == []  # ids match whole
