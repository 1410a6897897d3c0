"""GET /v1/credentials pages by name: `next` links walk every credential once, in order, and a
grant-limited key never sees a name outside its grants on any page."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveBroker, add_manual

ACME = [f"acme/c{i:03d}" for i in range(23)]
OTHER = [f"acmecorp/c{i:03d}" for i in range(9)] + [f"other/c{i:03d}" for i in range(11)]


def _walk(client: Any, first: str) -> tuple[list[str], list[dict[str, Any]]]:
    names: list[str] = []
    bodies: list[dict[str, Any]] = []
    url: str | None = first
    while url is not None:
        r = client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        bodies.append(body)
        names += [c["name"] for c in body["items"]]
        url = body["next"]
        assert len(bodies) < 50, "next links never end"
    return names, bodies


def test_next_links_walk_every_credential_once_in_name_order(
    live_broker: LiveBroker, new_token: Any
) -> None:
    for name in ACME + OTHER:
        add_manual(live_broker.store, name, new_token())
    admin = live_broker.client(live_broker.key("admin"))
    names, bodies = _walk(admin, "/v1/credentials?limit=10")
    assert names == sorted(ACME + OTHER)
    assert [len(b["items"]) for b in bodies] == [10, 10, 10, 10, 3]
    assert bodies[0]["total"] == len(ACME + OTHER)
    assert all(b["total"] is None for b in bodies[1:])  # a cursor page does not count
    assert bodies[-1]["next"] is None
    assert "after=acme%2Fc009" in bodies[0]["next"] and "limit=10" in bodies[0]["next"]
    # The tenant filter travels with the link.
    names, _ = _walk(admin, "/v1/credentials?limit=4&tenant=other")
    assert names == sorted(n for n in OTHER if n.startswith("other/"))


@pytest.mark.parametrize("grant", ["acme/*", "acme/**"])
def test_a_grant_limited_key_pages_only_through_its_grants(
    live_broker: LiveBroker, new_token: Any, grant: str
) -> None:
    """acmecorp/ shares the literal prefix "acme" but not the grant: never listed."""
    for name in ACME + OTHER:
        add_manual(live_broker.store, name, new_token())
    reader = live_broker.client(live_broker.key("reader", grant))
    names, bodies = _walk(reader, "/v1/credentials?limit=7")
    assert names == sorted(ACME)
    assert [len(b["items"]) for b in bodies] == [7, 7, 7, 2]


def test_bad_page_parameters_are_refused(live_broker: LiveBroker) -> None:
    admin = live_broker.client(live_broker.key("admin"))
    for query in ("limit=0", "limit=1001", "after=", "after=a&offset=3", "after=" + "x" * 201):
        r = admin.get(f"/v1/credentials?{query}")
        assert r.status_code == 422, (query, r.text)
        assert r.json()["error"]["code"] == "invalid_parameter", r.text
