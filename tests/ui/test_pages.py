"""The dashboard's pages in a real browser: live rotation, the needs-a-human queue, sessions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from _waiting import wait_for
from permatoken.notify.delivery import Outbox

from .conftest import World, csrf_of, current_version, shot, sign_in

pytestmark = pytest.mark.slow


def test_an_operator_rotates_and_another_tab_shows_the_new_version_without_reloading(
    world: World, new_page: Any
) -> None:
    """Tab A shows the credential; tab B rotates it (through the sandbox, as Meta); tab A's
    versions table gains version 2 from the change stream, with no navigation."""
    a = new_page()
    sign_in(a, world, "operator")
    a.goto(world.url + "/ui/credentials/acme/messaging")
    wait_for(
        lambda: a.evaluate("document.documentElement.dataset.live") == "open",
        timeout=20,
        what="the change stream",
    )
    a.evaluate("window.__notReloaded = true")
    assert a.locator("[data-testid=current-version]").inner_text() == "1"
    overview = a.context.new_page()
    overview.goto(world.url + "/ui/")
    wait_for(
        lambda: overview.evaluate("document.documentElement.dataset.live") == "open",
        timeout=20,
        what="the change stream",
    )
    overview.evaluate("window.__notReloaded = true")

    b = a.context.new_page()
    b.goto(world.url + "/ui/credentials/acme/messaging")
    b.get_by_role("button", name="Rotate now").click()
    b.wait_for_url("**/ui/credentials/acme/messaging?done=*")
    assert current_version(world, "acme/messaging") == 2
    assert len(world.sandbox.state.calls("GET /oauth/access_token")) == 1

    a.locator("tr[data-version='2']").wait_for(timeout=5000)
    assert a.locator("[data-testid=current-version]").inner_text() == "2"
    assert a.evaluate("window.__notReloaded") is True
    overview.locator("tr[data-name='acme/messaging'] td.num", has_text="2").wait_for(timeout=5000)
    assert overview.evaluate("window.__notReloaded") is True
    assert "version 2" in a.locator("#live-status").inner_text()
    # The new value joins the ones scanned for in every response the browser received.
    world.tokens.append(world.store.reveal("acme/messaging").reveal())
    shot(b, "credential-after-rotation")
    # Inspect and revoke the previous version, from the same page.
    b.get_by_role("button", name="Ask Meta (inspect)").click()
    b.wait_for_url("**done=*")
    assert "Meta says" in b.locator(".done").inner_text()
    b.get_by_role("button", name="Revoke previous version").click()
    b.wait_for_url("**done=*")
    states = {v.version: v.state.value for v in world.store.versions("acme/messaging")}
    assert states == {1: "revoked", 2: "current"}, states


def test_needs_a_human_shows_the_full_instruction_text_and_an_operator_acknowledges(
    world: World, new_page: Any
) -> None:
    page = new_page()
    sign_in(page, world, "operator")
    page.get_by_role("link", name="Needs a human").click()
    page.wait_for_url("**/ui/needs-human")
    (notice,) = Outbox(world.store, owner="t", clock=world.store.clock).all_notices("acme/broken")
    shown = page.locator("article.queue-item pre.notice-body").inner_text()
    assert shown.strip() == notice["body"].strip()
    assert "permatoken rotate acme/broken --token-file FILE" in shown
    assert "5. To let permatoken recover alone next time" in shown
    assert page.locator("article.queue-item").count() == 1
    shot(page, "needs-human")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url("**/ui/needs-human")
    assert f"Acknowledged by key:{world.key_ids['operator']}" in page.content()
    assert page.get_by_role("button", name="Acknowledge").count() == 0


def test_an_admin_creates_a_key_shown_once_and_revoking_it_ends_its_sessions(
    world: World, new_page: Any
) -> None:
    admin = new_page()
    sign_in(admin, world, "admin")
    admin.get_by_role("link", name="API keys").click()
    admin.get_by_label("Role").select_option("reader")
    admin.get_by_label("Grants (comma-separated)").fill("globex/**")
    admin.get_by_role("button", name="Create key").click()
    new_key = admin.locator("#new-key").input_value()
    assert new_key.startswith("pt_")
    admin.goto(world.url + "/ui/keys")
    assert new_key not in admin.content()  # shown once

    reader = new_page()
    reader.goto(world.url + "/ui/login")
    reader.get_by_label("API key").fill(new_key)
    reader.get_by_role("button", name="Sign in").click()
    reader.wait_for_url(world.url + "/ui/")
    assert reader.locator("table.fleet tbody tr[data-name]").count() == 1

    admin.locator("tr", has_text="globex/**").get_by_role("button").click()
    admin.wait_for_url(world.url + "/ui/keys")
    assert admin.locator("tr", has_text="globex/**").get_by_text("revoked").count() == 1
    assert reader.goto(world.url + "/ui/").url.startswith(world.url + "/ui/login")


class TestIdle:
    @pytest.fixture
    def serve_env(self) -> dict[str, str]:
        return {"PERMATOKEN_UI__SESSION_IDLE": "2"}

    def test_a_session_ends_after_the_idle_timeout(self, world: World, new_page: Any) -> None:
        page = new_page()
        sign_in(page, world, "operator")
        token = csrf_of(page)
        started = time.monotonic()

        def signed_out() -> bool:
            r = page.request.get(world.url + "/ui/service", max_redirects=0)
            if r.status == 200:
                return False  # still inside the idle window (and this request renewed it)
            return r.status == 303 and "/ui/login" in r.headers["location"]

        # Keep still (no request) for longer than the idle timeout, then look.
        wait_for(
            lambda: time.monotonic() - started > 2.5, timeout=10, what="2.5 s without requests"
        )
        assert signed_out()
        r = page.request.post(
            world.url + "/ui/credentials/acme/messaging/rotate",
            form={"csrf": token},
            max_redirects=0,
        )
        assert r.status == 401
        assert current_version(world, "acme/messaging") == 1
