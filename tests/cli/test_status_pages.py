"""`permatoken status` pages: the complete --json array is streamed page by page (same bytes as
one json.dumps), --limit/--after walk the names in order, and a bad combination is refused."""

from __future__ import annotations

import json
from typing import Any

from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings
from permatoken.store import open_store, pages

NAMES = [f"t{i % 3}/c{i:04d}" for i in range(25)]


def _seed(settings: Settings, names: list[str]) -> None:
    store = open_store(settings)
    try:
        for i, name in enumerate(names):
            store.add_credential(
                NewCredential(name=name, issuer="manual"),
                Secret(f"zqPage{i:04d}value123456"),
                VersionMeta(token_type="SYSTEM_USER"),
            )
    finally:
        store.close()


def test_status_json_streams_every_page_in_the_fixed_format(
    settings: Settings, cli: Any, monkeypatch: Any
) -> None:
    """With pages of 7 rows, 25 credentials come out as one JSON array in name order, byte for
    byte what a single json.dumps(indent=2) prints."""
    _seed(settings, NAMES)
    monkeypatch.setattr(pages, "PAGE", 7)
    reads: list[int] = []
    page = pages.status_page
    monkeypatch.setattr(pages, "status_page", lambda *a, **k: reads.append(1) or page(*a, **k))
    r = cli("status", "--json")
    assert r.rc == 0, r.stderr
    data = json.loads(r.stdout)
    assert [d["name"] for d in data] == sorted(NAMES)
    assert r.stdout == json.dumps(data, indent=2) + "\n"
    assert len(reads) == 4  # 7 + 7 + 7 + 4 rows
    assert {"name", "health", "expires_at", "version", "issuer", "token_type"} <= set(data[0])


def test_status_json_of_an_empty_store_is_an_empty_array(settings: Settings, cli: Any) -> None:
    r = cli("status", "--json")
    assert r.rc == 0 and json.loads(r.stdout) == [] and r.stdout == "[]\n"


def test_limit_and_after_walk_the_names_in_order(settings: Settings, cli: Any) -> None:
    """Pages of 10 following `--after` cover every credential once, in name order; the human
    table names the command for the next page."""
    _seed(settings, NAMES)
    seen: list[str] = []
    after: list[str] = []
    while True:
        r = cli("status", "--json", "--limit", "10", *after)
        assert r.rc == 0, r.stderr
        page = [d["name"] for d in json.loads(r.stdout)]
        if not page:
            break
        assert len(page) <= 10
        seen += page
        after = ["--after", page[-1]]
    assert seen == sorted(NAMES)
    r = cli("status", "--limit", "10")
    assert r.rc == 0
    tenth = sorted(NAMES)[9]
    assert f"more: `permatoken status --after {tenth} --limit 10`" in r.stdout
    r = cli("status", "--after", sorted(NAMES)[-1])
    assert r.rc == 0 and "more:" not in r.stdout


def test_limit_with_a_name_is_refused_with_a_hint(settings: Settings, cli: Any) -> None:
    _seed(settings, NAMES[:1])
    r = cli("status", NAMES[0], "--limit", "5")
    assert r.rc != 0
    assert "error:" in r.stderr and "hint:" in r.stderr and "permatoken status" in r.stderr
    assert "Traceback" not in r.stderr
