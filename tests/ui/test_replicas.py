"""Two `permatoken serve` replicas on one PostgreSQL: a rotation made through one replica's
dashboard appears on a page served by the other without a reload (LISTEN/NOTIFY)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _waiting import wait_for
from conftest import fresh_pg_database
from server._serve import Serve

from .conftest import World, build_world, current_version

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def world(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with fresh_pg_database() as url:
        monkeypatch.setenv("PERMATOKEN_DATABASE_URL", url)
        yield from build_world(home, monkeypatch)


def _sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url + "/ui/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/ui/")


def test_a_rotation_through_one_replica_shows_on_the_other(world: World, new_page: Any) -> None:
    with Serve("--no-scheduler") as other:
        other.start()
        watcher = new_page()
        _sign_in(watcher, world.url, world.keys["reader"])
        watcher.goto(world.url + "/ui/credentials/acme/messaging")
        wait_for(
            lambda: watcher.evaluate("document.documentElement.dataset.live") == "open",
            timeout=20,
            what="the change stream",
        )
        watcher.evaluate("window.__notReloaded = true")

        actor = new_page()
        _sign_in(actor, other.url, world.keys["operator"])
        actor.goto(other.url + "/ui/credentials/acme/messaging")
        actor.get_by_role("button", name="Rotate now").click()
        actor.wait_for_url("**done=*")
        assert current_version(world, "acme/messaging") == 2
        world.tokens.append(world.store.reveal("acme/messaging").reveal())

        watcher.locator("tr[data-version='2']").wait_for(timeout=5000)
        assert watcher.locator("[data-testid=current-version]").inner_text() == "2"
        assert watcher.evaluate("window.__notReloaded") is True
        # The session made on one replica is valid on the other (sessions live in the store;
        # cookies ignore the port, so the watcher's cookie goes to the other replica as is).
        r = watcher.request.get(other.url + "/ui/", max_redirects=0)
        assert r.status == 200
