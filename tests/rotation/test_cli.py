"""The README walk-through and the verdicts, through the real `permatoken` command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from permatoken.timeutil import parse_datetime

from ._live import DAY, EXCHANGE, Sandbox, spawn_cli, write_secret

NAME = "acme/messaging"


@pytest.fixture
def initialised(sandbox: Sandbox, cli) -> Sandbox:
    assert cli("init").rc == 0
    return sandbox


def sandbox_now(sandbox: Sandbox) -> datetime:
    return datetime.fromtimestamp(httpx.get(f"{sandbox.url}/_sandbox/clock").json()["now"], UTC)


def add_args(sandbox: Sandbox, tmp_path, token: str, *extra: str) -> tuple[list[str], str]:
    secret = write_secret(tmp_path, "app-secret.txt", sandbox.app["secret"])
    return ["--app-id", sandbox.app["id"], "--app-secret-file", str(secret), *extra], token


def test_readme_walkthrough(initialised, run_cli, tmp_path, emitted):
    """add a 60-day token, travel 45 days, rotate: new 60-day expiry, old token still valid, v2."""
    sandbox = initialised
    old = sandbox.token("system_user_60d")
    emitted.watch(old, sandbox.app["secret"])
    args, token = add_args(sandbox, tmp_path, old)
    added = run_cli("add", NAME, "--issuer", "meta-system-refresh", *args, input=token)
    assert added.rc == 0, added.stderr
    assert (
        "verdict: 60-day system-user token, expires in 60 days; "
        "permatoken will renew it from day 40 (policy)"
    ) in added.stdout

    r = httpx.post(f"{sandbox.url}/_sandbox/clock", json={"advance_seconds": 45 * DAY})
    assert r.status_code == 200

    rotated = run_cli("rotate", NAME)
    assert rotated.rc == 0, rotated.stderr
    assert f"{NAME}: rotated, version 2" in rotated.stdout
    assert "version 1 is kept as previous" in rotated.stdout
    status = run_cli("status", "--json").json()
    assert [(s["name"], s["version"], s["health"]) for s in status] == [(NAME, 2, "ok")]
    new_expiry = parse_datetime(status[0]["expires_at"])
    assert abs(new_expiry - (sandbox_now(sandbox) + timedelta(days=60))) < timedelta(days=1)
    assert sandbox.successes(EXCHANGE) == 1

    old_file = write_secret(tmp_path, "old.txt", old)
    inspected = run_cli(
        "inspect", "--app-id", sandbox.app["id"], "--token-file", str(old_file), "--json"
    ).json()
    assert inspected["valid"] is True
    old_expiry = parse_datetime(inspected["expires_at"])
    assert timedelta(days=14) < old_expiry - sandbox_now(sandbox) < timedelta(days=16)
    assert "60-day system-user token, expires in 15 days" in inspected["verdict"]
    table = run_cli("status").stdout
    assert NAME in table and " 2 " in table


def test_dashboard_token_verdict_says_how_to_get_a_permanent_one(initialised, cli, tmp_path):
    sandbox = initialised
    args, token = add_args(sandbox, tmp_path, sandbox.token("dashboard"))
    out = cli("add", "acme/dash", *args, input=token)
    assert out.rc == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert (
        "verdict: Dashboard/user token: expires in 23 h. It cannot be renewed forever. "
        "For a permanent setup create a system user (Business Settings → System users), "
        "assign the app and the WABA, and generate a token; "
        "`permatoken add … --issuer meta-system-refresh` (60-day) "
        "or `--issuer meta-system-mint` then keeps it alive"
    ) in text


def test_never_expiring_system_user_verdict(initialised, cli, tmp_path):
    sandbox = initialised
    args, token = add_args(sandbox, tmp_path, sandbox.token("system_user"))
    out = cli("add", "acme/forever", "--issuer", "meta-system-mint", *args, input=token)
    assert out.rc == 0, out.stderr
    # Meta's own example carries no target_ids for system users: no WABA ids to name.
    assert (
        "verdict: System-user token, never expires, valid, can message all WABAs assigned to it"
        in out.stdout
    )
    again = cli("inspect", "acme/forever", "--json").json()
    assert again["never_expires"] is True and again["expires_at"] is None
    assert (
        again["verdict"]
        == "System-user token, never expires, valid, can message all WABAs assigned to it"
    )


@pytest.mark.slow
def test_status_shows_the_step_of_a_stuck_rotation(initialised, cli, tmp_path, monkeypatch):
    """After a crash at `pending`, status says so; `rotate` then finishes that same rotation."""
    sandbox = initialised
    args, token = add_args(sandbox, tmp_path, sandbox.token("system_user_60d"))
    assert cli("add", NAME, "--issuer", "meta-system-refresh", *args, input=token).rc == 0
    sandbox.advance(45 * DAY)
    crashed = spawn_cli(
        "rotate", NAME, env={"PERMATOKEN_CRASH_AT": "pending", "PERMATOKEN_LEASE_TTL": "1"}
    )
    assert crashed.wait(timeout=60) == -9

    rows = cli("status", "--json").json()
    assert rows[0]["rotation_step"] == "pending" and rows[0]["health"] == "renewing"
    table = cli("status").stdout
    line = next(line for line in table.splitlines() if NAME in line)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells[0] == NAME and cells[-1] == "pending", line

    monkeypatch.setenv("PERMATOKEN_LEASE_TTL", "1")
    finished = cli("rotate", NAME, "--json").json()
    assert (finished["status"], finished["version"]) == ("rotated", 2)
    assert sandbox.successes(EXCHANGE) == 1
    rows = cli("status", "--json").json()
    assert rows[0]["rotation_step"] is None and rows[0]["version"] == 2
