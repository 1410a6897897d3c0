"""``permatoken import``: real processes against the sandbox (online) or offline."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from _live_sandbox import ThreadSandbox
from conftest import CliRunner
from permatoken._secret import Secret
from permatoken.store import Store

from .conftest import app_of


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def csv_of(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    lines = [",".join(columns)]
    lines += [",".join(r.get(c, "") for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def debug_calls(sandbox: ThreadSandbox) -> int:
    return len(sandbox.state.calls("GET /debug_token"))


def test_thousand_rows_online_then_rerun_is_unchanged(
    run_cli: CliRunner, sandbox: ThreadSandbox, store: Store, tmp_path: Path, emitted: Any
) -> None:
    """1,000 tokens inspected with debug_token: 990 valid ones created with Meta's facts, 10
    revoked ones refused with Meta's reason; the re-run asks Meta nothing and changes nothing."""
    app_id, secret = app_of(sandbox.state.fixtures())
    store.put_app(app_id, Secret(secret))
    rows, values = [], []
    for i in range(1000):
        tok = sandbox.state.create_token("system_user", app_id=app_id)
        if i % 100 == 7:
            sandbox.state.revoke_token(tok["value"])
        values.append(tok["value"])
        rows.append({"name": f"acme/c{i:04d}", "token": tok["value"], "app_id": app_id})
    f = write(tmp_path / "tokens.csv", csv_of(rows, ("name", "token", "app_id")))
    env = {"PERMATOKEN_GRAPH_URL": sandbox.url}
    started = time.perf_counter()
    first = run_cli("import", str(f), "--json", env=env, timeout=600)
    took = time.perf_counter() - started
    print(f"\nimport of 1,000 rows online: {took:.1f} s ({1000 / took:.0f} rows/s)")
    assert first.rc == 15, first.stderr
    report = first.json()
    assert (report["created"], report["unchanged"], report["refused"]) == (990, 0, 10)
    refused = [r for r in report["rows"] if r["outcome"] == "refused"]
    assert {r["name"] for r in refused} == {f"acme/c{i:04d}" for i in range(7, 1000, 100)}
    assert all("not valid" in r["reason"] for r in refused)
    assert debug_calls(sandbox) == 1000
    st = store.status("acme/c0000")
    assert st.current is not None and st.current.meta.token_type == "SYSTEM_USER"
    assert store.reveal("acme/c0001").reveal() == values[1]
    again = run_cli("import", str(f), "--json", env=env, timeout=600)
    assert again.rc == 15
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 990)
    assert debug_calls(sandbox) == 1000 + 10  # only the refused ones were asked about again
    assert len(store.list_status()) == 990
    emitted.watch(*values)


@pytest.mark.parametrize(
    "store_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_bad_rows_are_reported_and_the_rest_imported(
    run_cli: CliRunner, store: Store, tmp_path: Path, emitted: Any
) -> None:
    good, other = "EAAgood" + "x" * 30, "EAAother" + "y" * 30
    text = (
        "name,token,expires_at,issuer,waba_id\n"
        f"acme/ok,{good},never,manual,123;456\n"
        f"acme/ok2,{other},2031-01-01T00:00:00Z,,\n"
        f"Bad Name,{good}z,never,,\n"
        "acme/notoken,,never,,\n"
        f"acme/spaces,{good} inner,never,,\n"
        f"acme/when,{good}w,yesterday,,\n"
        f"acme/issuer,{good}i,never,wizard,\n"
        f"acme/waba,{good}q,never,,12-3\n"
        f"acme/short,{good}s,never\n"
        f"acme/ok,{other},never,,\n"
    )
    f = write(tmp_path / "mixed.csv", text)
    r = run_cli("import", str(f), "--offline")
    assert r.rc == 15 and "error:" in r.stderr and "hint:" in r.stderr
    assert "2 created, 0 unchanged, 8 refused" in r.stdout
    for why in (
        "invalid credential name",
        "the token is empty",
        "the token is",
        "cannot parse 'yesterday'",
        "unknown issuer",
        "waba_id must be",
        "fields where the header has",
        "line 2 has this name with another token",
    ):
        assert why in r.stdout, why
    assert store.get("acme/ok").waba_ids == ("123", "456")
    assert store.reveal("acme/ok").reveal() == good
    emitted.watch(good, other)


def test_a_file_others_can_read_is_refused_and_nothing_is_stored(
    run_cli: CliRunner, store: Store, tmp_path: Path, emitted: Any
) -> None:
    tok = "EAAsecret" + "z" * 30
    f = write(tmp_path / "open.csv", f"name,token,expires_at\nacme/a,{tok},never\n", 0o644)
    r = run_cli("import", str(f), "--offline")
    assert r.rc == 2 and "other users" in r.stderr and f"chmod 600 {f}" in r.stderr
    assert store.list_status() == []
    emitted.watch(tok)


def test_dry_run_and_json_lines_and_tenant(
    run_cli: CliRunner, store: Store, tmp_path: Path, emitted: Any
) -> None:
    toks = [f"EAAjsonl{i}" + "k" * 30 for i in range(3)]
    lines = [
        {"name": "a", "token": toks[0], "expires_at": "never"},
        {"name": "acme/b", "token": toks[1], "expires_at": "never", "phone_number_id": 555},
        {"name": "globex/c", "token": toks[2], "expires_at": "never"},
    ]
    f = write(tmp_path / "t.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n[1]\n")
    dry = run_cli("import", str(f), "--offline", "--dry-run", "--tenant", "acme", "--json")
    assert dry.rc == 15 and store.list_status() == []
    assert [r["outcome"] for r in dry.json()["rows"]] == [
        "created",
        "created",
        "refused",
        "refused",
    ]
    real = run_cli("import", str(f), "--offline", "--tenant", "acme", "--json")
    assert [r["name"] for r in real.json()["rows"][:2]] == ["acme/a", "acme/b"]
    assert "not in tenant acme" in real.json()["rows"][2]["reason"]
    assert store.get("acme/b").phone_number_id == "555"
    emitted.watch(*toks)


def test_online_import_stays_within_the_apps_budget(
    run_cli: CliRunner, sandbox: ThreadSandbox, store: Store, tmp_path: Path
) -> None:
    """With a budget of 10 calls an hour (90 % usable: 9) the 10th row is refused, not sent."""
    app_id, secret = app_of(sandbox.state.fixtures())
    store.put_app(app_id, Secret(secret))
    rows = [
        {
            "name": f"acme/b{i}",
            "token": sandbox.state.create_token("system_user", app_id=app_id)["value"],
            "app_id": app_id,
        }
        for i in range(12)
    ]
    f = write(tmp_path / "b.csv", csv_of(rows, ("name", "token", "app_id")))
    env = {"PERMATOKEN_GRAPH_URL": sandbox.url, "PERMATOKEN_BUDGET_APP_PER_HOUR": "10"}
    r = run_cli("import", str(f), "--json", env=env)
    assert r.rc == 15
    outcomes = [x["outcome"] for x in r.json()["rows"]]
    assert outcomes == ["created"] * 9 + ["refused"] * 3
    assert "budget" in r.json()["rows"][-1]["reason"]
    assert debug_calls(sandbox) == 9


@pytest.mark.slow
def test_hundred_thousand_rows_offline(run_cli: CliRunner, store: Store, tmp_path: Path) -> None:
    """100,000 rows offline, then the re-run: all created, then all unchanged."""
    n = 100_000
    lines = ["name,token,expires_at"]
    lines += [f"t{i % 100}/c{i:06d},EAAbulk{i:06d}{'b' * 40},never" for i in range(n)]
    f = write(tmp_path / "big.csv", "\n".join(lines) + "\n")
    started = time.perf_counter()
    r = run_cli("import", str(f), "--offline", "--json", record=False, timeout=3600)
    took = time.perf_counter() - started
    assert r.rc == 0, r.stderr[-2000:]
    assert r.json()["created"] == n
    started = time.perf_counter()
    again = run_cli("import", str(f), "--offline", "--json", record=False, timeout=3600)
    took_again = time.perf_counter() - started
    print(
        f"\nimport of {n:,} rows offline: {took:.1f} s ({n / took:,.0f} rows/s); "
        f"re-run (all unchanged): {took_again:.1f} s"
    )
    assert again.json()["unchanged"] == n
    assert store.reveal("t42/c012342").reveal().startswith("EAAbulk012342")
    assert "EAAbulk" not in r.stderr + again.stderr


def test_the_progress_bar_shows_on_a_terminal_only(store: Store, tmp_path: Path) -> None:
    """stderr a terminal (a pty): Rich draws the bar there; stdout (a pipe) stays a plain report."""
    import pty
    import subprocess
    import sys

    lines = ["name,token,expires_at"] + [
        f"acme/p{i},EAAprog{i:04d}{'p' * 30},never" for i in range(1200)
    ]
    f = write(tmp_path / "p.csv", "\n".join(lines) + "\n")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "permatoken", "import", str(f), "--offline"],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=dict(os.environ, COLUMNS="100", TERM="xterm"),
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    assert b"importing" in seen and b"EAAprog" not in seen
    assert b"importing" not in out and out.decode().endswith(
        "1200 created, 0 unchanged, 0 refused\n"
    )
