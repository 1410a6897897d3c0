"""A new user's ordinary mistakes: each gets a clear error, a non-zero exit, and changes nothing.

Also the refusals that protect what is stored: an `add` never overwrites a registered app's
secret and never leaves an app behind when it fails; `rotate` of a manual credential without a
value does not turn it `needs_human`; commands run before `init` create nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from permatoken.settings import Settings
from permatoken.store import open_store

TOKEN = "zqMistakesToken0123456789"
SQLITE = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _secret_file(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value)
    path.chmod(0o600)
    return path


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A port that accepts connections and never answers (Meta hanging)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock
    finally:
        sock.close()


# --- item 17: add never overwrites an app's secret, and a failed add writes nothing -----------


@SQLITE
def test_add_with_another_secret_for_a_registered_app_is_refused(
    settings: Settings, cli: Any, db_rows: Any, tmp_path: Path, emitted: Any
) -> None:
    """A second add naming a known app with a different secret changes nothing, and says how."""
    right = _secret_file(tmp_path, "right.txt", "zqRightAppSecret0123")
    wrong = _secret_file(tmp_path, "wrong.txt", "zqWrongAppSecret0123")
    emitted.watch("zqRightAppSecret0123", "zqWrongAppSecret0123")
    offline = ("--offline", "--never-expires", "--app-id", "111")
    assert cli("add", "acme/one", *offline, "--app-secret-file", str(right), input=TOKEN).rc == 0
    url = settings.resolved_database_url
    before = db_rows(url)
    for extra in (offline, ("--app-id", "111")):  # offline, and online (refused before Meta)
        r = cli("add", "acme/two", *extra, "--app-secret-file", str(wrong), input=TOKEN)
        assert r.rc == 2, r.stderr
        assert "app 111 is already registered with a different secret" in r.stderr
        assert "permatoken app update 111 --secret-file FILE" in r.stderr
    assert db_rows(url) == before
    store = open_store(settings)
    try:
        assert store.app_secret("111").reveal() == "zqRightAppSecret0123"
    finally:
        store.close()
    # `app add` does not replace it either: that is `app update`, explicitly.
    again = cli("app", "add", "111", "--secret-file", str(wrong))
    assert again.rc == 4 and "permatoken app update 111 --secret-file FILE" in again.stderr
    assert db_rows(url) == before
    # The same secret again, or none at all, is fine: the stored one is used.
    assert cli("add", "acme/two", *offline, "--app-secret-file", str(right), input=TOKEN).rc == 0
    assert cli("add", "acme/three", *offline, input=TOKEN).rc == 0


def test_a_failed_add_leaves_no_app_behind(
    settings: Settings,
    cli: Any,
    db_rows: Any,
    tmp_path: Path,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Meta unreachable, or the name taken: no credential, no app, no event is written."""
    secret = _secret_file(tmp_path, "s.txt", "zqNewAppSecret012345")
    assert cli("add", "acme/taken", "--offline", "--never-expires", input=TOKEN).rc == 0
    url = settings.resolved_database_url
    before = db_rows(url)
    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", f"http://127.0.0.1:{closed_port}")
    r = cli("add", "acme/new", "--app-id", "222", "--app-secret-file", str(secret), input=TOKEN)
    # Meta did not answer: "upstream unreachable" (12), naming --offline as the way around.
    assert r.rc == 12, r.stderr
    assert f"cannot reach Meta at http://127.0.0.1:{closed_port}" in r.stderr
    assert "--offline" in r.stderr.split("hint:")[1]
    taken = cli(
        "add",
        "acme/taken",
        "--offline",
        "--never-expires",
        "--app-id",
        "333",
        "--app-secret-file",
        str(secret),
        input=TOKEN,
    )
    assert taken.rc == 4 and "already exists" in taken.stderr
    assert db_rows(url) == before


@SQLITE
def test_ctrl_c_during_add_writes_nothing(
    settings: Settings,
    db_rows: Any,
    tmp_path: Path,
    silent_server: socket.socket,
) -> None:
    """Ctrl-C while Meta is slow to answer: exit 130, 'interrupted', no app, no credential."""
    secret = _secret_file(tmp_path, "s.txt", "zqCtrlCAppSecret0123")
    token = _secret_file(tmp_path, "token.txt", TOKEN)
    url = settings.resolved_database_url
    before = db_rows(url)
    port = silent_server.getsockname()[1]
    env = dict(os.environ, PERMATOKEN_GRAPH_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "permatoken", "add", "acme/new", "--app-id", "444"),
            *("--app-secret-file", str(secret), "--token-file", str(token)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        silent_server.settimeout(60)
        conn, _ = silent_server.accept()  # the add is now waiting for Meta's answer
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in out + err
    assert db_rows(url) == before


# --- item 19: rotate of a manual credential without a value ---------------------------------


@SQLITE
def test_rotate_of_a_manual_credential_without_a_value_changes_nothing(
    settings: Settings, cli: Any, run_cli: Any, db_rows: Any
) -> None:
    """On a terminal: refused with a hint naming --token-file; piped but empty: refused too.
    Either way the credential stays healthy (not `needs_human`) and nothing is written."""
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli("add", "acme/manual", "--offline", "--expires-at", expires, input=TOKEN).rc == 0
    url = settings.resolved_database_url
    before = db_rows(url)
    main, tty = os.openpty()  # a real terminal on stdin, as when a person types the command
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "permatoken", "rotate", "acme/manual"],
            stdin=tty,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(main)
        os.close(tty)
    assert proc.returncode == 2, proc.stderr
    assert "acme/manual is renewed by hand" in proc.stderr and "nothing was changed" in proc.stderr
    assert "permatoken rotate acme/manual --token-file FILE" in proc.stderr
    piped = run_cli("rotate", "acme/manual", input="")
    assert piped.rc == 2 and "token on stdin is empty" in piped.stderr
    assert db_rows(url) == before
    [row] = cli("status", "--json").json()
    assert (row["health"], row["version"]) == ("ok", 1)


# --- item 20: port already in use ---------------------------------------------------------------


@SQLITE
def test_a_busy_port_is_a_clear_error_for_serve_and_sandbox(
    settings: Settings, run_cli: Any
) -> None:
    """`serve`/`sandbox` on a port in use: exit 13, what is wrong and what to do; no bug report."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        serve, sandbox = run_cli.many(
            [
                (("serve", "--port", port, "--no-scheduler"), {}),
                (("sandbox", "--port", port), {}),
            ]
        )
    for r, command in ((serve, "serve"), (sandbox, "sandbox")):
        assert r.rc == 13, r.stderr
        assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in r.stderr
        assert f"`permatoken {command} --port N`" in r.stderr
        assert "stop the process" in r.stderr


# --- item 22: nothing is created before `init` --------------------------------------------------

BEFORE_INIT: list[tuple[str, ...]] = [
    ("status",),
    ("list", "--json"),
    ("get", "acme/x"),
    ("inspect", "acme/x"),
    ("rotate", "acme/x"),
    ("revoke", "acme/x"),
    ("remove", "acme/x", "--yes"),
    ("add", "acme/x", "--offline", "--never-expires"),
    ("update", "acme/x", "--purpose", "messaging"),
    ("app", "list"),
    ("keys", "status"),
    ("keys", "list"),
    ("audit", "verify"),
    ("audit", "list"),
    ("policy", "show", "acme/x"),
    ("render", "acme/x", "--out", "{tmp}/token.txt"),
    ("exec", "--env", "T=acme/x", "--", "true"),
    ("doctor",),
]


def test_commands_before_init_create_nothing_and_say_run_init(
    home: Path, cli: Any, tmp_path: Path
) -> None:
    """Every command but `init` refuses before `init` (exit != 0, "permatoken init") and
    leaves no home directory, database or key behind; `init` then makes the home 0700."""
    problems = []
    for template in BEFORE_INIT:
        argv = tuple(arg.format(tmp=tmp_path) for arg in template)
        r = cli(*argv, input=TOKEN)
        if r.rc == 0 or "permatoken init" not in r.output:
            problems.append(f"{' '.join(argv)}: exit {r.rc}: {r.output.strip()}")
        if home.exists():
            problems.append(f"{' '.join(argv)} created {sorted(p.name for p in home.iterdir())}")
            break
    assert not problems, "\n".join(problems)
    assert cli("init").rc == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_database_in_a_new_directory_gets_a_private_directory(tmp_path: Path, cli: Any) -> None:
    """`init` with --database-url in a directory that does not exist creates it 0700."""
    where = tmp_path / "elsewhere" / "db"
    assert cli("--database-url", f"sqlite:///{where}/permatoken.db", "init").rc == 0
    assert stat.S_IMODE(where.stat().st_mode) == 0o700


# --- ordinary mistakes ----------------------------------------------------------------------------


@SQLITE
def test_ordinary_mistakes_are_clear_and_change_nothing(
    settings: Settings, cli: Any, db_rows: Any, tmp_path: Path, emitted: Any
) -> None:
    """Wrong flag, wrong order, a directory or an empty file as --token-file, an unknown
    issuer, --option without '=', a value on the command line: exit 2, a precise message."""
    emitted.watch(TOKEN)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases: list[tuple[tuple[str, ...], str]] = [
        (("add", "acme/x", "--tokenfile", "t.txt"), "No such option: --tokenfile"),
        (("acme/x", "add"), "No such command 'acme/x'"),
        (
            ("add", "acme/x", "--offline", "--never-expires", "--token-file", str(tmp_path)),
            "Is a directory",
        ),
        (("add", "acme/x", "--offline", "--never-expires", "--token-file", str(empty)), "is empty"),
        (("add", "acme/x", "--never-expires", "--issuer", "magic"), "unknown issuer 'magic'"),
        (("add", "acme/x", "--never-expires", "--option", "system_user_id"), "is not KEY=VALUE"),
        (
            ("add", "acme/x", TOKEN, "--never-expires"),
            "refusing a secret given on the command line",
        ),
        (("status", "Acme"), "lowercase letters"),
        (("update", "acme/x"), "nothing to change"),
    ]
    url = settings.resolved_database_url
    before = db_rows(url)
    problems = []
    for argv, text in cases:
        r = cli(*argv, input=TOKEN)
        if r.rc != 2 or text not in r.stderr:
            problems.append(f"{' '.join(argv)}: exit {r.rc}: {r.stderr.strip()}")
    assert not problems, "\n".join(problems)
    assert db_rows(url) == before


@SQLITE
def test_token_files_with_a_trailing_newline_or_crlf_are_read_as_the_token(
    settings: Settings, cli: Any, tmp_path: Path
) -> None:
    """What editors write (LF or CRLF line ending) is the token without it."""
    for name, ending in (("acme/lf", "\n"), ("acme/crlf", "\r\n")):
        path = tmp_path / "token.txt"
        path.write_bytes((TOKEN + ending).encode())
        r = cli("add", name, "--offline", "--never-expires", "--token-file", str(path))
        assert r.rc == 0, r.stderr
        assert cli("get", name, record=False).stdout == TOKEN + "\n"


@SQLITE
def test_status_says_how_long_ago_a_token_expired_in_minutes(settings: Settings, cli: Any) -> None:
    """Not 'expired 0 h ago': a token that expired minutes ago says so."""
    ago = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli("add", "acme/gone", "--offline", "--expires-at", ago, input=TOKEN).rc == 0
    table = cli("status").stdout
    assert "expired 10 min ago" in table, table


def test_every_exit_code_is_documented() -> None:
    """docs/cli.md has a row for every exit code the command uses."""
    from permatoken import cli

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    codes = {code for _, code in cli.EXIT_CODES} | {cli.INTERRUPTED, cli.INTERNAL_ERROR, 0, 1}
    missing = [code for code in sorted(codes) if f"\n| {code} |" not in doc]
    assert not missing, missing
