"""A real `permatoken serve` (subprocess) on a store with a few credentials, the sandbox as Meta
(in a thread), and Debian's Chromium driven by Playwright.

Every response the browser receives is kept (:class:`Seen`); the ``world`` fixture checks at
the end of each test that none of them carries a token value stored in the world.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from _live_sandbox import ThreadSandbox
from conftest import init_store
from permatoken._secret import Secret
from permatoken.models import Health, NewCredential, VersionMeta
from permatoken.notify import notices as nt
from permatoken.notify.delivery import Outbox
from permatoken.server.keystore import KeyStore
from permatoken.settings import load_settings
from permatoken.store import Store, open_store
from server._serve import Serve

CHROMIUM = "/usr/bin/chromium"
#: Screenshots land here (the best are copied into docs/img/ by hand).
SHOTS = Path(os.environ.get("PERMATOKEN_UI_SHOTS", "/tmp/permatoken-ui-shots"))

pytestmark = pytest.mark.slow


def _from_unix(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value else None


@dataclass
class World:
    store: Store
    sandbox: ThreadSandbox
    serve: Serve
    keys: dict[str, str]
    key_ids: dict[str, str]
    tokens: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.serve.url


def _add_meta(world_store: Store, state: Any, name: str, kind: str = "system_user_60d") -> str:
    token = state.create_token(kind)
    app = state.fixtures()["apps"][0]
    try:
        world_store.get_app(app["id"])
    except Exception:
        world_store.put_app(app["id"], Secret(app["secret"]))
    meta = VersionMeta(
        token_type=token["type"],
        issued_at=_from_unix(token["issued_at"]),
        expires_at=_from_unix(token["expires_at"]),
        waba_ids=tuple(token["waba_ids"]),
        scopes=("whatsapp_business_messaging", "whatsapp_business_management"),
        is_valid=True,
        verdict="60-day system-user token, valid",
    )
    spec = NewCredential(
        name=name,
        issuer="meta-system-refresh",
        app_id=app["id"],
        waba_ids=tuple(token["waba_ids"][:1]),
        phone_number_id="15550001111",
    )
    world_store.add_credential(spec, Secret(token["value"]), meta)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    world_store.update_credential(name, next_due_at=due, next_action="renew")
    return str(token["value"])


def build_world(
    home: Path, monkeypatch: pytest.MonkeyPatch, *serve_args: str, env: dict[str, str] | None = None
) -> Iterator[World]:
    sandbox = ThreadSandbox().start()
    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", sandbox.url)
    settings = load_settings()
    init_store(settings)
    store = open_store(settings)
    tokens = []
    try:
        for name in ("acme/messaging", "acme/marketing", "globex/messaging", "initech/support"):
            tokens.append(_add_meta(store, sandbox.state, name))
        # One that cannot fix itself, with the notice a human gets.
        tokens.append(_add_meta(store, sandbox.state, "acme/broken"))
        store.update_credential(
            "acme/broken",
            health=Health.NEEDS_HUMAN,
            health_reason="Meta says the token was revoked (190/460)",
        )
        outbox = Outbox(store, owner="test", clock=store.clock)
        now = dt.datetime.now(dt.UTC)
        outbox.enqueue(
            nt.needs_human(
                "acme/broken",
                "acme",
                1,
                reason="Meta says the token was revoked (190/460)",
                expires_at=None,
                now=now,
            ),
            [],
        )
        ks = KeyStore(store)
        keys, ids = {}, {}
        for label, role, grants in (
            ("reader", "reader", ["acme/**"]),
            ("operator", "operator", ["acme/**"]),
            ("admin", "admin", []),
            ("app", "app", ["acme/*"]),
        ):
            key, value = ks.create(role, grants, actor="test", label=label)
            keys[label], ids[label] = value.reveal(), key.id
        serve = Serve("--no-scheduler", *serve_args, env=env)
        with serve:
            serve.start()
            yield World(store, sandbox, serve, keys, ids, tokens)
    finally:
        store.close()
        sandbox.stop()


@pytest.fixture
def serve_env() -> dict[str, str]:
    """Extra environment for `permatoken serve` (a test overrides it, e.g. a tiny idle timeout)."""
    return {}


@pytest.fixture
def world(
    home: Path, monkeypatch: pytest.MonkeyPatch, serve_env: dict[str, str]
) -> Iterator[World]:
    yield from build_world(home, monkeypatch, env=serve_env)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Seen:
    """Every response body (and headers) the browser received."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.statuses: list[tuple[str, int]] = []

    def on_response(self, response: Any) -> None:
        self.statuses.append((response.url, response.status))
        text = " ".join(f"{k}: {v}" for k, v in response.headers.items())
        try:
            body = response.body()
            text += "\n" + body.decode("utf-8", "replace")
        except Exception:
            pass  # redirects and aborted streams have no body
        self.items.append((response.url, text))

    def containing(self, value: str) -> list[str]:
        return [url for url, text in self.items if value in text]


@pytest.fixture
def seen(world: World) -> Iterator[Seen]:
    s = Seen()
    yield s
    assert s.items, "the browser received nothing"
    assert not [u for u, st in s.statuses if st >= 500], f"server errors: {s.statuses}"
    for token in world.tokens + [t for t in _all_versions(world)]:
        found = s.containing(token)
        assert not found, f"a token value reached the browser in: {found}"


def _all_versions(world: World) -> list[str]:
    out = []
    for name in (
        "acme/messaging",
        "acme/marketing",
        "globex/messaging",
        "initech/support",
        "acme/broken",
    ):
        for v in world.store.versions(name):
            out.append(world.store.reveal(name, v.version).reveal())
    return out


@pytest.fixture
def new_page(browser: Any, seen: Seen) -> Iterator[Any]:
    contexts = []

    def make(*, dark: bool = False, mobile: bool = False) -> Any:
        ctx = browser.new_context(
            color_scheme="dark" if dark else "light",
            viewport={"width": 390, "height": 844} if mobile else {"width": 1280, "height": 900},
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("response", seen.on_response)
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page: Any, world: World, who: str) -> None:
    page.goto(world.url + "/ui/")
    assert "/ui/login" in page.url
    page.get_by_label("API key").fill(world.keys[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(world.url + "/ui/")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def csrf_of(page: Any) -> str:
    """The session's CSRF token, as the page's own forms carry it."""
    return str(page.locator("form[action='/ui/logout'] input[name=csrf]").get_attribute("value"))


def current_version(world: World, name: str) -> int | None:
    return world.store.status(name).credential.current_version


class Browserless:
    """An httpx client that signs in through the form, as a browser would; keeps every answer."""

    def __init__(self, world: World, who: str) -> None:
        self.world = world
        self.answers: list[httpx.Response] = []
        self.client = httpx.Client(
            base_url=world.url, timeout=30, event_hooks={"response": [self._keep]}
        )
        page = self.client.get("/ui/login")
        nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert nonce is not None
        r = self.client.post(
            "/ui/login", data={"key": world.keys[who], "csrf": nonce.group(1), "next": "/ui/"}
        )
        assert r.status_code == 303, r.text
        self.csrf = self.token()

    def _keep(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return  # a stream: read by the test itself
        response.read()
        self.answers.append(response)

    def token(self) -> str:
        page = self.client.get("/ui/service")
        m = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert m is not None, page.text[:300]
        return m.group(1)

    def leaked(self, values: list[str]) -> list[str]:
        out = []
        for r in self.answers:
            text = str(r.headers) + r.text
            out += [str(r.url) for v in values if v in text]
        return out


@pytest.fixture
def signed_in(world: World) -> Iterator[Any]:
    made: list[Browserless] = []

    def make(who: str) -> Browserless:
        b = Browserless(world, who)
        made.append(b)
        return b

    yield make
    for b in made:
        assert not b.leaked(world.tokens), "a token value was in an answer"
        assert not [r for r in b.answers if r.status_code >= 500], "a server error"
        b.client.close()
