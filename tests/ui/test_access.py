"""Who sees and does what in the dashboard: roles, grants, CSRF, sign-in throttle (real browser)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import World, csrf_of, current_version, shot, sign_in

pytestmark = pytest.mark.slow


def _names(page: Any) -> set[str]:
    return set(
        page.locator("table.fleet tbody tr[data-name]").evaluate_all(
            "rs => rs.map(r => r.dataset.name)"
        )
    )


def test_the_overview_lists_the_credentials_in_the_key_grant_and_none_outside(
    world: World, new_page: Any
) -> None:
    """A reader granted acme/** sees the acme credentials, counts only them, and no other tenant."""
    page = new_page()
    sign_in(page, world, "reader")
    assert _names(page) == {"acme/messaging", "acme/marketing", "acme/broken"}
    assert page.locator(".counts .n").first.inner_text() == "3"
    assert "globex" not in page.content() and "initech" not in page.content()
    # Search (a name prefix, a phone number id) cannot reach outside the grant either.
    page.goto(world.url + "/ui/?q=acme/m")
    assert _names(page) == {"acme/messaging", "acme/marketing"}
    page.goto(world.url + "/ui/?q=globex")
    assert _names(page) == set()
    page.goto(world.url + "/ui/?q=15550001111")
    assert _names(page) == {"acme/messaging", "acme/marketing", "acme/broken"}
    # An admin without grants sees everything.
    admin = new_page()
    sign_in(admin, world, "admin")
    assert _names(admin) == {
        "acme/messaging",
        "acme/marketing",
        "acme/broken",
        "globex/messaging",
        "initech/support",
    }
    admin.goto(world.url + "/ui/?q=globex")
    assert _names(admin) == {"globex/messaging"}
    admin.goto(world.url + "/ui/?tenant=globex")
    assert _names(admin) == {"globex/messaging"}
    admin.goto(world.url + "/ui/?health=needs_human")
    assert _names(admin) == {"acme/broken"}


def test_a_credential_outside_the_grant_is_refused(world: World, new_page: Any) -> None:
    """Its page answers 403 (the same answer whether it exists or not), and shows nothing of it."""
    page = new_page()
    sign_in(page, world, "reader")
    for name in ("globex/messaging", "globex/does-not-exist"):
        r = page.goto(world.url + f"/ui/credentials/{name}")
        assert r is not None and r.status == 403
        assert "may not view" in page.content()
    r = page.request.get(world.url + "/ui/credentials/globex/messaging/fragment")
    assert r.status == 403 and "SYSTEM_USER" not in r.text()


def test_a_reader_sees_no_action_controls_and_a_forged_post_is_refused(
    world: World, new_page: Any
) -> None:
    """No rotate/inspect/acknowledge buttons for a reader; a POST made anyway (with a valid CSRF
    token) is refused 403 and changes nothing."""
    page = new_page()
    sign_in(page, world, "reader")
    page.goto(world.url + "/ui/credentials/acme/messaging")
    assert page.get_by_role("heading", name="Meta's verdict").is_visible()
    for label in ("Rotate now", "Ask Meta (inspect)", "Acknowledge"):
        assert page.get_by_role("button", name=label).count() == 0
    page.goto(world.url + "/ui/needs-human")
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    assert page.get_by_role("link", name="API keys").count() == 0
    token = csrf_of(page)
    r = page.request.post(
        world.url + "/ui/credentials/acme/messaging/rotate",
        form={"csrf": token, "force": "1"},
        max_redirects=0,
    )
    assert r.status == 403, r.text()
    assert "may not manage" in r.text()
    assert current_version(world, "acme/messaging") == 1
    assert world.sandbox.state.calls("GET /oauth/access_token") == []
    r = page.request.post(
        world.url + "/ui/keys", form={"csrf": token, "role": "admin"}, max_redirects=0
    )
    assert r.status == 403
    assert page.goto(world.url + "/ui/keys").status == 403  # type: ignore[union-attr]


def test_an_operator_cannot_act_outside_its_grant(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, world, "operator")
    r = page.request.post(
        world.url + "/ui/credentials/globex/messaging/rotate",
        form={"csrf": csrf_of(page), "force": "1"},
        max_redirects=0,
    )
    assert r.status == 403
    assert current_version(world, "globex/messaging") == 1


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(world: World, new_page: Any) -> None:
    """Even an operator's own session cannot rotate without the form's token: 403, nothing done."""
    page = new_page()
    sign_in(page, world, "operator")
    url = world.url + "/ui/credentials/acme/messaging/rotate"
    for form in ({"force": "1"}, {"force": "1", "csrf": "x" * 43}, {"force": "1", "csrf": ""}):
        r = page.request.post(url, form=form, max_redirects=0)
        assert r.status == 403, (form, r.text())
        assert "security token" in r.text()
    assert current_version(world, "acme/messaging") == 1
    r = page.request.post(world.url + "/ui/logout", form={}, max_redirects=0)
    assert r.status == 403
    assert page.goto(world.url + "/ui/").url == world.url + "/ui/"  # still signed in


def test_app_keys_and_wrong_keys_cannot_sign_in_and_guessing_is_throttled(
    world: World, new_page: Any
) -> None:
    """An app key is refused (it is for reading tokens); wrong keys get 401 and, after the API's
    failed-auth burst, 429 with Retry-After, while a right key still signs in."""
    page = new_page()
    page.goto(world.url + "/ui/login")
    page.get_by_label("API key").fill(world.keys["app"])
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        page.get_by_role("button", name="Sign in").click()
    assert info.value.status == 403
    assert "App keys cannot sign in" in page.content()
    statuses = []
    for _ in range(12):
        page.get_by_label("API key").fill("pt_" + "A" * 43)
        with page.expect_response(lambda r: r.request.method == "POST") as info:
            page.get_by_role("button", name="Sign in").click()
        statuses.append(info.value.status)
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert "Too many failed sign-ins" in page.content()
    assert "/ui/login" in page.url
    sign_in(new_page(), world, "admin")


def test_the_sign_in_redirect_stays_on_this_site(world: World, new_page: Any) -> None:
    page = new_page()
    page.goto(world.url + "/ui/login?next=//evil.example/x")
    page.get_by_label("API key").fill(world.keys["admin"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(world.url + "/ui/")


def test_the_cookie_is_httponly_strict_and_scoped_to_ui(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, world, "reader")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "pt_ui"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == ""
    shot(page, "reader-overview")
