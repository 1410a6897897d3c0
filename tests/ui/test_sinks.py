"""The credential page's sinks over plain HTTP (a real `permatoken serve`): each sink's URL,
delivered and current version, lag, last error, attempts and next attempt; grants apply; no
token value reaches the page, not even one planted in a stored error."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlalchemy as sa

from permatoken.server.keystore import KeyStore
from permatoken.store.schema import credentials, versions
from permatoken.store.sinks import SinkTable

from .conftest import World, current_version, shot, sign_in

pytestmark = pytest.mark.slow

NAME = "acme/messaging"
FILE = "file:///run/secrets/acme-messaging"
AWS = "aws-sm://prod/whatsapp/acme-messaging"


def _row(html: str, url: str) -> str:
    m = re.search(r'<tr data-sink="' + re.escape(url) + r'".*?</tr>', html, re.S)
    assert m is not None, f"no row for {url} in the page"
    return m.group(0)


def _cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
    ]


def _set_up(world: World, signed_in: Any) -> str:
    """v1 in both sinks; rotate to v2 (through the page); the file sink gets v2, AWS fails.

    Returns the token value planted in the AWS sink's stored error."""
    table = SinkTable(world.store)
    table.add(NAME, FILE, {}, uid="s-file", delivered_version=1, actor="test")
    table.add(NAME, AWS, {}, uid="s-aws", delivered_version=1, actor="test")
    op = signed_in("operator")
    r = op.client.post(f"/ui/credentials/{NAME}/rotate", data={"csrf": op.csrf, "force": "1"})
    assert r.status_code == 303
    assert current_version(world, NAME) == 2
    token = world.store.reveal(NAME).reveal()
    world.tokens.append(token)
    now = dt.datetime.now(dt.UTC)
    # v2 became current 2 h 30 min ago (the AWS sink's lag is counted from then).
    with world.store.write() as conn:
        cid = conn.execute(
            sa.select(credentials.c.id).where(credentials.c.name == NAME)
        ).scalar_one()
        conn.execute(
            versions.update()
            .where(versions.c.credential_id == cid, versions.c.version == 2)
            .values(state_changed_at=now - dt.timedelta(hours=2, minutes=30))
        )
    file_rec, aws_rec = table.get(NAME, FILE), table.get(NAME, AWS)
    assert file_rec is not None and aws_rec is not None
    table.delivered(file_rec, 2, now)
    # Three failures; the last stored text quotes the token (the worker never stores one; the
    # page must mask it anyway).
    for _ in range(3):
        rec = table.get(NAME, AWS)
        assert rec is not None
        table.failed(
            rec, f"AccessDenied writing {token} to prod", now + dt.timedelta(minutes=20), 2
        )
    return token


def test_the_credential_page_shows_each_sink_with_its_lag(world: World, signed_in: Any) -> None:
    token = _set_up(world, signed_in)
    reader = signed_in("reader")
    for path in (f"/ui/credentials/{NAME}", f"/ui/credentials/{NAME}/fragment"):
        r = reader.client.get(path)
        assert r.status_code == 200, r.text
        assert "Sinks are not shown" not in r.text
        up = _cells(_row(r.text, FILE))
        assert up == [FILE, "file", "v2", "v2", "up to date", "0", "—", "—"], up
        behind = _cells(_row(r.text, AWS))
        assert behind[:4] == [AWS, "aws-sm", "v1", "v2"], behind
        assert re.fullmatch(r"behind 2 h 3\d min", behind[4]), behind
        assert behind[5] == "3"
        assert behind[6].startswith("AccessDenied writing ") and "**********" in behind[6]
        assert re.fullmatch(r"in 1\d min", behind[7]), behind
        assert token not in r.text
    # The fixture also scans every answer for every token value (signed_in's teardown).


def test_a_credential_without_sinks_says_how_to_add_one(world: World, signed_in: Any) -> None:
    r = signed_in("reader").client.get("/ui/credentials/acme/marketing")
    assert r.status_code == 200
    assert "No sinks." in r.text and "permatoken sink add acme/marketing --to URL" in r.text


def test_a_reader_of_another_tenant_sees_no_sinks(world: World, signed_in: Any) -> None:
    _set_up(world, signed_in)
    _, value = KeyStore(world.store).create(
        "reader", ["globex/**"], actor="test", label="globex-reader"
    )
    world.keys["globex-reader"] = value.reveal()
    other = signed_in("globex-reader")
    for path in (f"/ui/credentials/{NAME}", f"/ui/credentials/{NAME}/fragment"):
        r = other.client.get(path)
        assert r.status_code == 403, r.text
        assert "aws-sm://" not in r.text and "file://" not in r.text
        assert "acme-messaging" not in r.text
    # Its own credential's page shows its (no) sinks, none of acme's.
    r = other.client.get("/ui/credentials/globex/messaging")
    assert r.status_code == 200 and "No sinks." in r.text and AWS not in r.text


def test_in_a_browser_the_sinks_table_reads_and_fits_a_phone(
    world: World, signed_in: Any, new_page: Any
) -> None:
    _set_up(world, signed_in)
    for mobile in (False, True):
        page = new_page(mobile=mobile)
        sign_in(page, world, "reader")
        page.goto(world.url + f"/ui/credentials/{NAME}")
        table = page.get_by_role("table").filter(has_text="Last error")
        up = table.locator(f'tr[data-sink="{FILE}"] td.lag')
        assert up.is_visible() and up.inner_text().strip() == "up to date"
        lag = table.locator(f'tr[data-sink="{AWS}"] td.lag')
        assert re.fullmatch(r"behind 2 h 3\d min", lag.inner_text().strip())
        if mobile:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            shot(page, "credential-sinks-phone")
        else:
            shot(page, "credential-sinks")
    # `seen` (through new_page) checks no answer the browser got carried a token value.
