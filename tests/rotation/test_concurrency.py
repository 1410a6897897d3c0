"""Exactly one renewal per token version, across processes and threads."""

from __future__ import annotations

import threading

import pytest

from permatoken.models import VersionState

from ._live import DAY, EXCHANGE, MINT, spawn_cli

NAME = "acme/messaging"


@pytest.mark.slow
def test_five_processes_rotating_at_once_make_one_upstream_refresh(sandbox, add, world):
    """N=5 `permatoken rotate` at once: one refresh at Meta, every process exits 0, one current."""
    add(NAME, sandbox.token("system_user_60d"))
    sandbox.advance(45 * DAY)
    procs = [spawn_cli("rotate", NAME, "--json") for _ in range(5)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]

    import json

    statuses = sorted(json.loads(out)["status"] for _, out, _ in results)
    assert [rc for rc, _, _ in results] == [0] * 5, [err.decode() for _, _, err in results]
    assert statuses == ["already_rotated"] * 4 + ["rotated"]
    assert sandbox.successes(EXCHANGE) == 1
    versions = world.versions(NAME)
    assert [v.state for v in versions] == [VersionState.PREVIOUS, VersionState.CURRENT]


def test_twenty_threads_reporting_a_dead_token_make_one_mint(sandbox, add, engine, world):
    """20 concurrent failure reports on the dead version collapse into one break-glass mint."""
    admin = sandbox.state.create_token("system_user_60d", system_user_id=sandbox.system_user(1))[
        "value"
    ]
    add("acme/admin", admin, issuer="manual")
    dying = sandbox.token("system_user_60d")
    add(
        NAME,
        dying,
        options={"system_user_id": sandbox.system_user(1), "admin_credential": "acme/admin"},
    )
    sandbox.state.revoke_token(dying)
    before = sandbox.successes(MINT)

    outcomes: list = []
    barrier = threading.Barrier(20)

    def report() -> None:
        barrier.wait()
        outcomes.append(engine.report_failure(NAME, 1, code=190, subcode=466))

    threads = [threading.Thread(target=report) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(outcomes) == 20
    assert {o.version for o in outcomes} == {2}, outcomes
    assert sorted({o.status for o in outcomes}) <= ["newer_exists", "rotated"]
    assert [o.status for o in outcomes].count("rotated") == 1
    assert sandbox.successes(MINT) - before == 1
    assert sandbox.successes(EXCHANGE) == 0
    assert world.version(NAME).version == 2
    assert sandbox.accepts(world.reveal(NAME))
