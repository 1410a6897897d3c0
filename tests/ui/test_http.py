"""The dashboard over plain HTTP (a real `permatoken serve`): bad input, timeouts, audit, leaks."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from _waiting import wait_for
from permatoken.store.schema_broker import audit_log
from permatoken.store.schema_ui import ui_sessions

from .conftest import World, current_version

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/ui/?page=abc", 422, "page must be a whole number"),
        ("/ui/?page=0", 422, "page must be a whole number"),
        ("/ui/?health=great", 422, "health must be one of"),
        ("/ui/credentials/Acme..x", 422, "invalid credential name"),
        ("/ui/credentials/acme/nope", 404, "no credential named"),
        ("/ui/credentials/acme/nope/fragment", 404, "no credential named"),
    ],
)
def test_bad_input_is_an_html_page_with_a_reason_never_a_500(
    world: World, signed_in: Any, path: str, status: int, says: str
) -> None:
    b = signed_in("admin")
    r = b.client.get(path)
    assert r.status_code == status, r.text
    assert says in r.text and "Traceback" not in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_refused_actions_change_nothing(world: World, signed_in: Any) -> None:
    b = signed_in("operator")
    r = b.client.post("/ui/notices/999999/ack", data={"csrf": b.csrf})
    assert r.status_code == 404
    r = b.client.post("/ui/credentials/acme/messaging/revoke-previous", data={"csrf": b.csrf})
    assert r.status_code == 409 and "no previous version" in r.text
    assert [v.state.value for v in world.store.versions("acme/messaging")] == ["current"]
    r = b.client.post(
        "/ui/credentials/acme/messaging/rotate",
        content=b"csrf=" + b.csrf.encode() + b"&x=" + b"y" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403  # too large a form: no token read, nothing done
    assert current_version(world, "acme/messaging") == 1


def test_sign_in_and_actions_are_audited(world: World, signed_in: Any) -> None:
    b = signed_in("operator")
    r = b.client.post("/ui/credentials/acme/marketing/rotate", data={"csrf": b.csrf, "force": "1"})
    assert r.status_code == 303
    assert current_version(world, "acme/marketing") == 2
    world.tokens.append(world.store.reveal("acme/marketing").reveal())
    b.client.get("/ui/credentials/acme/marketing")
    actor = f"key:{world.key_ids['operator']}"

    def audited() -> list[tuple[str, str]]:
        with world.store.read() as conn:
            rows = conn.execute(
                sa.select(audit_log.c.action, audit_log.c.result).where(audit_log.c.actor == actor)
            ).all()
        return [(a, r) for a, r in rows]

    wait_for(
        lambda: ("credential.rotated", "rotated") in audited(), timeout=20, what="the audit records"
    )
    assert ("ui.login", "ok") in audited()


def test_the_session_table_holds_no_session_id(world: World, signed_in: Any) -> None:
    b = signed_in("reader")
    sid = b.client.cookies.get("pt_ui")
    assert sid
    with world.store.read() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(sa.select(ui_sessions))]
    assert len(rows) == 1 and all(sid not in v for v in rows[0])


def test_after_sign_out_the_old_cookie_opens_nothing(world: World, signed_in: Any) -> None:
    b = signed_in("operator")
    sid = b.client.cookies.get("pt_ui")
    r = b.client.post("/ui/logout", data={"csrf": b.csrf})
    assert r.status_code == 303
    replay = httpx.Client(base_url=world.url, cookies={"pt_ui": sid})
    with replay:
        assert replay.get("/ui/").status_code == 303
        r = replay.post("/ui/credentials/acme/messaging/rotate", data={"csrf": b.csrf})
        assert r.status_code == 401
        assert replay.get("/ui/fragment").status_code == 401
    assert current_version(world, "acme/messaging") == 1


class TestAbsolute:
    @pytest.fixture
    def serve_env(self) -> dict[str, str]:
        return {"PERMATOKEN_UI__SESSION_MAX": "3"}

    def test_a_busy_session_still_ends_at_the_absolute_timeout(
        self, world: World, signed_in: Any
    ) -> None:
        b = signed_in("reader")
        started = time.monotonic()

        def ended() -> bool:
            r = b.client.get("/ui/")  # a request every 50 ms: never idle
            return r.status_code == 303 and "/ui/login" in r.headers["location"]

        wait_for(ended, timeout=20, what="the absolute timeout")
        assert time.monotonic() - started >= 2.0


def test_the_live_stream_ends_when_the_key_is_revoked(world: World, signed_in: Any) -> None:
    b = signed_in("reader")
    admin = signed_in("admin")
    lines: list[str] = []
    with b.client.stream("GET", "/ui/events") as stream:
        it = stream.iter_lines()
        lines.append(next(it))
        r = admin.client.post(
            f"/ui/keys/{world.key_ids['reader']}/revoke", data={"csrf": admin.csrf}
        )
        assert r.status_code == 303
        for line in it:
            lines.append(line)
            if line.startswith("event: ended"):
                break
    assert "event: ended" in lines
    assert b.client.get("/ui/").status_code == 303


def test_a_link_cannot_plant_a_message_on_a_page(world: World, signed_in: Any) -> None:
    """Only messages signed for this session (its own action's result) are shown."""
    b = signed_in("operator")
    planted = "Your key expired: enter it again at evil.example"
    r = b.client.get("/ui/credentials/acme/messaging", params={"done": planted, "sig": "0" * 32})
    assert r.status_code == 200 and planted not in r.text
    r = b.client.post("/ui/credentials/acme/messaging/inspect", data={"csrf": b.csrf})
    assert r.status_code == 303
    shown = b.client.get(r.headers["location"])
    assert "Meta says:" in shown.text


def test_ui_without_a_slash_and_unknown_ui_paths(world: World, signed_in: Any) -> None:
    b = signed_in("reader")
    r = b.client.get("/ui", follow_redirects=True)
    assert r.status_code == 200 and "<h1>Fleet</h1>" in r.text
    assert b.client.get("/ui/nope").status_code == 404
    assert b.client.get("/ui/static/../templates/base.html").status_code == 404


def test_the_service_page_shows_api_keys_to_admins_only(world: World, signed_in: Any) -> None:
    admin = signed_in("admin").client.get("/ui/service")
    assert "Active: 1 admin, 1 operator, 1 reader, 1 app" in admin.text
    assert "Verified:" in admin.text and "No backup yet" in admin.text
    reader = signed_in("reader").client.get("/ui/service")
    assert reader.status_code == 200 and "Active:" not in reader.text
    assert "Budgets are per app and WABA" in reader.text
