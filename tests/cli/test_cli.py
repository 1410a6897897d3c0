"""The `permatoken` command end to end: init, add, status, get, remove, doctor, keys rotate."""

from __future__ import annotations

import base64
import json
import re
import stat
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from permatoken.cli import main
from permatoken.crypto import generate_key, kek_id_of, read_key_file_keys, write_key_file
from permatoken.settings import Settings
from permatoken.store import open_store

IST = timezone(timedelta(hours=5, minutes=30))
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_python_m_permatoken_and_help(run_cli: Any) -> None:
    """`python -m permatoken` is the console script; --help exits 0 and lists the commands."""
    r = run_cli("--help")
    assert r.rc == 0
    for command in ("init", "add", "status", "get", "remove", "keys", "doctor"):
        assert command in r.stdout


def test_main_returns_exit_codes_without_exiting(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main(argv) returns the code, including a command's own typer.Exit code."""
    assert main(["--help"]) == 0
    assert main(["doctor"]) == 1  # no home yet: doctor fails and says so
    assert main(["no-such-command"]) == 2
    out, err = capsys.readouterr()
    assert "does not exist" in out and "No such command" in err


def test_init_creates_home_key_and_database(home: Path, run_cli: Any) -> None:
    r = run_cli("init")
    assert r.rc == 0, r.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "key").stat().st_mode) == 0o600
    assert (home / "permatoken.db").exists()
    assert "generated" in r.stdout and "Back it up" in r.stdout


def test_add_then_get_round_trip_through_a_pipe(
    settings: Settings, run_cli: Any, new_token: Any
) -> None:
    """The value goes in on stdin and comes out of `get` on a pipe, byte for byte."""
    value = new_token("EAA")
    added = run_cli(
        "add",
        "acme/messaging",
        "--never-expires",
        "--token-type",
        "SYSTEM_USER",
        input=value + "\n",
    )
    assert added.rc == 0, added.stderr
    assert "added acme/messaging version 1" in added.stdout
    assert value not in added.output
    got = run_cli("get", "acme/messaging", record=False)
    assert got.rc == 0, got.stderr
    assert got.stdout == value + "\n"


def test_add_from_file_and_environment(
    settings: Settings, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "token.txt"
    path.write_text("zqFromFile0123456789\n")
    assert cli("add", "a/file", "--token-file", str(path), "--never-expires").rc == 0
    monkeypatch.setenv("MY_TOKEN", "zqFromEnv0123456789")
    assert cli("add", "a/env", "--from-env", "MY_TOKEN", "--never-expires").rc == 0
    assert (
        cli("add", "a/dash", "--token-file", "-", "--never-expires", input="zqFromDash0123456\n").rc
        == 0
    )
    st = open_store(settings)
    try:
        assert st.reveal("a/file").reveal() == "zqFromFile0123456789"
        assert st.reveal("a/env").reveal() == "zqFromEnv0123456789"
        assert st.reveal("a/dash").reveal() == "zqFromDash0123456"
    finally:
        st.close()


def test_status_json_fixed_format_and_health(settings: Settings, cli: Any) -> None:
    """status --json: [{name, health, expires_at (ISO UTC/null), version, issuer, token_type}]."""
    now = datetime.now(UTC).replace(microsecond=0)
    cases = {
        "t/never": ("--never-expires",),
        "t/later": ("--expires-at", iso(now + timedelta(days=60))),
        "t/soon": ("--expires-at", iso(now + timedelta(days=3))),
        "t/gone": ("--expires-at", iso(now - timedelta(days=1))),
        "t/zoned": ("--expires-at", (now + timedelta(days=30)).astimezone(IST).isoformat()),
    }
    for name, opts in cases.items():
        r = cli(
            "add",
            name,
            *opts,
            "--token-type",
            "SYSTEM_USER",
            "--issuer",
            "manual",
            input="zqValue" + name[2:] + "123456",
        )
        assert r.rc == 0, r.stderr
    r = cli("status", "--json")
    assert r.rc == 0
    data = json.loads(r.stdout)
    assert isinstance(data, list)
    by_name = {item["name"]: item for item in data}
    assert [item["name"] for item in data] == sorted(cases)
    for item in data:
        assert {"name", "health", "expires_at", "version", "issuer", "token_type"} <= set(item)
        assert item["version"] == 1 and type(item["version"]) is int
        assert item["issuer"] == "manual" and item["token_type"] == "SYSTEM_USER"
        assert item["expires_at"] is None or ISO_UTC.fullmatch(item["expires_at"])
    assert by_name["t/never"]["expires_at"] is None
    assert by_name["t/zoned"]["expires_at"] == iso(now + timedelta(days=30))
    health = {name: item["health"] for name, item in by_name.items()}
    assert health == {
        "t/never": "ok",
        "t/later": "ok",
        "t/soon": "expiring",
        "t/gone": "expired",
        "t/zoned": "ok",
    }
    only = json.loads(cli("status", "--json", "--health", "expiring").stdout)
    assert [i["name"] for i in only] == ["t/soon"]
    assert json.loads(cli("list", "--json", "--tenant", "nobody").stdout) == []


def test_status_table_for_humans(settings: Settings, cli: Any) -> None:
    assert "no credentials yet" in cli("status").stdout
    cli("add", "acme/m", "--never-expires", input="zqValue123456789")
    table = cli("status").stdout
    assert "acme/m" in table and "never" in table and "ok" in table
    assert "zqValue123456789" not in table


def test_get_on_a_terminal_shows_only_the_fingerprint(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("add", "acme/m", "--never-expires", input="zqTerminal123456789")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    r = cli("get", "acme/m")
    assert r.rc == 0
    assert "zqTerminal123456789" not in r.output
    assert "sha256:" in r.stdout and "--reveal" in r.stderr
    revealed = cli("get", "acme/m", "--reveal", record=False)
    assert "zqTerminal123456789" in revealed.stdout


def test_get_a_specific_version(settings: Settings, cli: Any) -> None:
    cli("add", "acme/m", "--never-expires", input="zqVersionOne1234")
    st = open_store(settings)
    try:
        from permatoken._secret import Secret
        from permatoken.models import VersionMeta

        st.promote(
            "acme/m", st.add_pending("acme/m", Secret("zqVersionTwo1234"), VersionMeta()).version
        )
    finally:
        st.close()
    assert cli("get", "acme/m", record=False).stdout == "zqVersionTwo1234\n"
    assert cli("get", "acme/m", "--version", "1", record=False).stdout == "zqVersionOne1234\n"
    missing = cli("get", "acme/m", "--version", "7")
    assert missing.rc == 3 and "has no version 7" in missing.stderr


def test_remove_needs_confirmation_off_a_terminal(
    settings: Settings, run_cli: Any, cli: Any, db_rows: Any
) -> None:
    """Without --yes and without a terminal, remove refuses and changes nothing."""
    cli("add", "acme/m", "--never-expires", input="zqValue123456789")
    before = db_rows(settings.resolved_database_url)
    r = run_cli("remove", "acme/m")
    assert r.rc == 2
    assert "refusing to remove 'acme/m' without confirmation" in r.stderr and "--yes" in r.stderr
    assert db_rows(settings.resolved_database_url) == before
    assert cli("remove", "acme/m", "--yes").rc == 0
    assert json.loads(cli("status", "--json").stdout) == []


def test_doctor_all_good(settings: Settings, cli: Any) -> None:
    cli("add", "acme/m", "--never-expires", input="zqValue123456789")
    r = cli("doctor", "--json")
    assert r.rc == 0, r.stdout
    checks = json.loads(r.stdout)
    assert all(c["ok"] for c in checks)
    assert {c["check"] for c in checks} >= {
        "home directory",
        "key",
        "database and schema",
        "keys in use",
    }


def test_doctor_reports_a_readable_key_file(settings: Settings, run_cli: Any) -> None:
    """A key file readable by others: doctor says so, says how to fix it, and exits non-zero."""
    settings.resolved_key_file.chmod(0o644)
    r = run_cli("doctor")
    assert r.rc != 0
    assert "✗ key" in r.stdout and "readable by others (mode 0644)" in r.stdout
    assert f"fix: chmod 600 {settings.resolved_key_file}" in r.stdout


def test_doctor_reports_an_open_home_directory(settings: Settings, cli: Any) -> None:
    settings.home.chmod(0o755)
    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert (
        not checks["home directory"]["ok"]
        and checks["home directory"]["fix"] == f"chmod 700 {settings.home}"
    )


# --- key rotation -------------------------------------------------------------------------


def _add_three(cli: Any) -> dict[str, str]:
    values = {f"acme/c{i}": f"zqRotateValue{i}abcdef" for i in range(3)}
    for name, value in values.items():
        assert cli("add", name, "--never-expires", input=value).rc == 0
    return values


def _assert_all_decrypt(settings: Settings, values: dict[str, str]) -> None:
    st = open_store(settings)
    try:
        for name, value in values.items():
            assert st.reveal(name).reveal() == value
    finally:
        st.close()


def test_keys_rotate_then_remove_the_old_key(settings: Settings, run_cli: Any, cli: Any) -> None:
    """`keys rotate` re-wraps every data key under a new KEK; then the old KEK can go."""
    values = _add_three(cli)
    path = settings.resolved_key_file
    (old,) = read_key_file_keys(path)
    r = run_cli("keys", "rotate")
    assert r.rc == 0, r.stderr
    keys = read_key_file_keys(path)
    assert len(keys) == 2 and keys[0] == old
    new_id = kek_id_of(keys[1])
    assert f"re-wrapped 3 data keys under {new_id}" in r.stdout
    usage = {row["kek_id"]: row for row in json.loads(cli("keys", "status", "--json").stdout)}
    assert usage[new_id] == {"kek_id": new_id, "loaded": True, "active": True, "data_keys": 3}
    assert usage[kek_id_of(old)]["data_keys"] == 0
    write_key_file(path, [keys[1]])  # remove the old key line by hand
    _assert_all_decrypt(settings, values)
    assert cli("doctor").rc == 0


def test_keys_rotate_prune(settings: Settings, cli: Any) -> None:
    values = _add_three(cli)
    path = settings.resolved_key_file
    (old,) = read_key_file_keys(path)
    r = cli("keys", "rotate", "--prune")
    assert r.rc == 0, r.stderr
    assert "removed 1 unused key(s)" in r.stdout
    keys = read_key_file_keys(path)
    assert len(keys) == 1 and keys[0] != old
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _assert_all_decrypt(settings, values)


def test_interrupted_rotation_resumes_without_a_third_key(settings: Settings, cli: Any) -> None:
    """A rotation that stopped after one batch is finished by the next `keys rotate`."""
    values = _add_three(cli)
    path = settings.resolved_key_file
    (old,) = read_key_file_keys(path)
    new = generate_key()
    write_key_file(path, [old, new])
    st = open_store(settings)
    try:

        class Stop(Exception):
            pass

        def stop(_n: int) -> None:
            raise Stop

        with pytest.raises(Stop):
            st.rewrap(batch=1, progress=stop)
        assert st.kek_usage() == {kek_id_of(old): 2, kek_id_of(new): 1}
    finally:
        st.close()
    r = cli("keys", "rotate")
    assert r.rc == 0, r.stderr
    assert "resuming" in r.stdout and "re-wrapped 2 data keys" in r.stdout
    assert read_key_file_keys(path) == [old, new]
    write_key_file(path, [new])
    _assert_all_decrypt(settings, values)


def test_rotation_with_permatoken_key(
    store_url: str, cli: Any, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """PERMATOKEN_KEY (base64, comma-separated, last active): append a key, rotate, drop the old."""
    k1, k2 = (base64.b64encode(generate_key()).decode() for _ in range(2))
    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", store_url)
    monkeypatch.setenv("PERMATOKEN_KEY", k1)
    r = cli("init")
    assert r.rc == 0 and "using PERMATOKEN_KEY" in r.stdout
    assert not (home / "key").exists()
    assert cli("add", "env/m", "--never-expires", input="zqEnvValue123456").rc == 0
    monkeypatch.setenv("PERMATOKEN_KEY", f"{k1},{k2}")
    r = cli("keys", "rotate")
    assert r.rc == 0, r.stderr
    assert "re-wrapped 1 data keys" in r.stdout
    monkeypatch.setenv("PERMATOKEN_KEY", k2)
    assert cli("get", "env/m", record=False).stdout == "zqEnvValue123456\n"
    monkeypatch.setenv("PERMATOKEN_KEY", k1)
    wrong = cli("get", "env/m")
    assert (
        wrong.rc == 6
        and "which is not loaded" in wrong.stderr
        and "'env/m' version 1" in wrong.stderr
    )


def test_add_has_one_file_option_per_declared_secret_name() -> None:
    """`add --NAME-file` exists for each of models.SECRET_NAMES, and no other secret file option."""
    import typer

    from permatoken.cli import _import_commands
    from permatoken.cli.app import app
    from permatoken.models import SECRET_NAMES

    _import_commands()
    add = typer.main.get_command(app).commands["add"]
    file_options = {opt for param in add.params for opt in param.opts if opt.endswith("-file")} - {
        "--token-file",
        "--app-secret-file",
    }
    assert file_options == {f"--{name.replace('_', '-')}-file" for name in SECRET_NAMES}
