"""The dashboard's look: screenshots (light, dark, phone), keyboard use, offline assets only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from permatoken._secret import Secret
from permatoken.models import Health, NewCredential, VersionMeta

from .conftest import World, shot, sign_in

pytestmark = pytest.mark.slow


def test_screenshots_in_light_dark_and_on_a_phone(world: World, new_page: Any) -> None:
    """Dark mode follows prefers-color-scheme; on a phone nothing is wider than the screen."""
    now = dt.datetime.now(dt.UTC)
    healths = [Health.OK] * 5 + [Health.EXPIRING, Health.RENEWING, Health.FAILING]
    for i in range(16):  # a fleet with some variety, for the pictures
        name = f"acme/store-{i:02d}"
        life = (i * 37) % 88 + 1
        world.store.add_credential(
            NewCredential(name=name, issuer="manual" if i % 4 == 0 else "meta-system-refresh"),
            Secret(f"EAAB{i:02d}" + "Q" * 60),
            VersionMeta(token_type="SYSTEM_USER", expires_at=now + dt.timedelta(days=life)),
        )
        world.tokens.append(f"EAAB{i:02d}" + "Q" * 60)
        world.store.update_credential(
            name,
            health=healths[i % len(healths)],
            next_due_at=now + dt.timedelta(days=life * 2 / 3),
            next_action="renew",
        )
    light = new_page()
    sign_in(light, world, "operator")
    shot(light, "overview")
    light.goto(world.url + "/ui/credentials/acme/messaging")
    shot(light, "credential")
    light_bg = light.evaluate("getComputedStyle(document.body).backgroundColor")

    dark = new_page(dark=True)
    sign_in(dark, world, "operator")
    dark_bg = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light_bg == "rgb(255, 255, 255)" and dark_bg == "rgb(13, 17, 23)"
    shot(dark, "overview-dark")
    dark.goto(world.url + "/ui/needs-human")
    shot(dark, "needs-human-dark")

    phone = new_page(mobile=True)
    sign_in(phone, world, "operator")
    for path in ("/ui/", "/ui/credentials/acme/messaging", "/ui/needs-human", "/ui/service"):
        phone.goto(world.url + path)
        wide = phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, (path, wide)
    shot(phone, "overview-phone")


def test_keyboard_only_sign_in_and_navigation(world: World, new_page: Any) -> None:
    """The key field has focus and a label; Enter signs in; Tab reaches the skip link and the
    navigation; every form control on the pages has an accessible name."""
    page = new_page()
    page.goto(world.url + "/ui/login")
    assert page.evaluate("document.activeElement.id") == "key"
    page.keyboard.type(world.keys["operator"])
    page.keyboard.press("Enter")
    page.wait_for_url(world.url + "/ui/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Fleet"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(world.url + "/ui/needs-human")
    for path in ("/ui/", "/ui/credentials/acme/messaging", "/ui/needs-human"):
        page.goto(world.url + path)
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, button')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !el.textContent.trim())
                .map(el => el.outerHTML)"""
        )
        assert unnamed == [], (path, unnamed)


def test_every_asset_comes_from_the_server_itself(world: World, new_page: Any, seen: Any) -> None:
    """No CDN: every request the pages make goes to the dashboard's own origin, and every page
    carries a Content-Security-Policy that allows nothing else."""
    page = new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    sign_in(page, world, "admin")
    for path in ("/ui/credentials/acme/messaging", "/ui/service", "/ui/keys"):
        r = page.goto(world.url + path)
        assert r is not None and "default-src 'none'" in r.headers["content-security-policy"]
    assert requested and all(u.startswith(world.url + "/ui/") for u in requested), requested
    assert any(u.endswith("htmx-2.0.11.min.js") for u in requested)
    assert page.evaluate("typeof window.htmx") == "object"
