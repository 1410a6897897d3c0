"""Every bad input from the foundation issue, through the real command in a subprocess.

Each case must exit non-zero, say on stderr what is wrong, print no traceback (``run_cli``
checks that for every call) and leave the store exactly as it was. Independent invocations run
concurrently (``run_cli.many``) to keep the suite fast; a failure names the case.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from permatoken.crypto import generate_key, write_key_file
from permatoken.settings import Settings, load_settings

EXISTING = "acme/existing"
EXISTING_VALUE = "zqExistingValue0123456789"
NEW_VALUE = "zqBrandNewValue0123456789"
GRAMMAR = "lowercase letters, digits"

ADD = ("add", "acme/new", "--never-expires")

# (case id, argv, stdin, exit code, text that stderr must contain)
Case = tuple[str, tuple[str, ...], str | bytes | None, int, str]

#: The bad values and names listed in the foundation issue: each runs in its own process.
ISSUE_CASES: list[Case] = [
    ("empty value", ADD, "", 2, "token on stdin is empty"),
    ("whitespace only", ADD, "  \t \n", 2, "only whitespace"),
    ("over 8 KiB", ADD, "x" * (8 * 1024 + 1), 2, "longer than 8192 bytes"),
    ("non-ASCII", ADD, "zqCaf\u00e9Token0123456789", 2, "non-ASCII"),
    ("control character", ADD, "zqBell\x07Token0123456789", 2, "control characters"),
    (
        "value as argument",
        ("add", "acme/new", NEW_VALUE, "--never-expires"),
        None,
        2,
        "refusing a secret given on the command line",
    ),
    ("name with spaces", ("add", "acme/with space", "--never-expires"), NEW_VALUE, 2, GRAMMAR),
    ("name with ..", ("add", "acme/../etc", "--never-expires"), NEW_VALUE, 2, GRAMMAR),
    ("leading slash", ("add", "/acme/new", "--never-expires"), NEW_VALUE, 2, GRAMMAR),
    ("trailing slash", ("add", "acme/new/", "--never-expires"), NEW_VALUE, 2, GRAMMAR),
    (
        "SQL metacharacters",
        ("add", "a';drop table credentials;--", "--never-expires"),
        NEW_VALUE,
        2,
        GRAMMAR,
    ),
    ("300 characters", ("add", "a" * 300, "--never-expires"), NEW_VALUE, 2, GRAMMAR),
]

#: More of the same kind, through the same main() in-process (cheaper than a process each).
EXTRA_CASES: list[Case] = [
    ("empty line", ADD, "\n", 2, "token on stdin is empty"),
    ("far over 64 KiB", ADD, "x" * (70 * 1024), 2, "larger than 64 KiB"),
    ("invalid UTF-8", ADD, b"zq\xff\xfeToken0123456789", 2, "not text"),
    ("NUL byte", ADD, "zqNul\x00Token0123456789", 2, "control characters"),
    ("embedded newline", ADD, "zqLine1\nzqLine2\n", 2, "whitespace or control characters"),
    (
        "value as --token",
        ("add", "acme/new", "--token", NEW_VALUE, "--never-expires"),
        None,
        2,
        "refusing a secret",
    ),
    (
        "missing token file",
        ("add", "acme/new", "--token-file", "/nonexistent/t", "--never-expires"),
        None,
        2,
        "cannot read /nonexistent/t",
    ),
    (
        "unset env var",
        ("add", "acme/new", "--from-env", "PT_UNSET_VAR", "--never-expires"),
        None,
        2,
        "PT_UNSET_VAR is not set",
    ),
    ("no expiry given", ("add", "acme/new"), NEW_VALUE, 2, "--never-expires"),
    (
        "bad expiry",
        ("add", "acme/new", "--expires-at", "soon"),
        NEW_VALUE,
        2,
        "cannot parse 'soon'",
    ),
    ("uppercase name", ("add", "Acme/New", "--never-expires"), NEW_VALUE, 2, GRAMMAR),
    (
        "Rich markup in name",
        ("add", "a[/]b[bold]", "--never-expires"),
        NEW_VALUE,
        2,
        "'a[/]b[bold]'",
    ),
    ("get invalid name", ("get", "Acme Corp"), None, 2, GRAMMAR),
    ("remove SQL name", ("remove", "x' OR '1'='1", "--yes"), None, 2, GRAMMAR),
    ("unknown command", ("frobnicate",), None, 2, "No such command"),
    ("bad option value", ("get", EXISTING, "--version", "x"), None, 2, "--version"),
]

STORE_CASES: list[Case] = [
    (
        "duplicate add",
        ("add", EXISTING, "--never-expires"),
        NEW_VALUE,
        4,
        f"credential '{EXISTING}' already exists",
    ),
    ("get unknown", ("get", "acme/unknown"), None, 3, "no credential named 'acme/unknown'"),
    (
        "remove unknown",
        ("remove", "acme/unknown", "--yes"),
        None,
        3,
        "no credential named 'acme/unknown'",
    ),
    ("get unknown version", ("get", EXISTING, "--version", "9"), None, 3, "has no version 9"),
]


def _run_cases(run_cli: Any, cases: list[Case], *, cli: Any = None) -> list[str]:
    """Run every case (concurrently, or in-process with ``cli``); describe each broken promise."""
    if cli is None:
        results = run_cli.many([(argv, {"input": stdin}) for _, argv, stdin, _, _ in cases])
    else:
        results = [cli(*argv, input=stdin) for _, argv, stdin, _, _ in cases]
    problems = []
    for (case, _argv, _stdin, code, text), r in zip(cases, results, strict=True):
        if r.rc != code:
            problems.append(f"{case}: exit {r.rc}, expected {code}: {r.stderr.strip()}")
        elif text not in r.stderr:
            problems.append(f"{case}: stderr lacks {text!r}: {r.stderr.strip()}")
        elif not r.stderr.strip():
            problems.append(f"{case}: nothing on stderr")
        for value in (NEW_VALUE, EXISTING_VALUE):
            if value in r.output:
                problems.append(f"{case}: printed the token value")
    return problems


def _add_existing(cli: Any) -> None:
    assert cli("add", EXISTING, "--never-expires", input=EXISTING_VALUE).rc == 0


# Values and names are refused before the database is touched: SQLite is enough here.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_bad_values_and_names(
    settings: Settings, run_cli: Any, cli: Any, db_rows: Any, emitted: Any
) -> None:
    """Values and names outside the rules: exit 2 with the rule in the message, store unchanged."""
    _add_existing(cli)
    emitted.watch(NEW_VALUE, EXISTING_VALUE)
    url = settings.resolved_database_url
    before = db_rows(url)
    problems = _run_cases(run_cli, ISSUE_CASES) + _run_cases(run_cli, EXTRA_CASES, cli=cli)
    assert not problems, "\n".join(problems)
    assert db_rows(url) == before


def test_store_level_refusals(
    settings: Settings, run_cli: Any, cli: Any, db_rows: Any, emitted: Any
) -> None:
    """Duplicate add and unknown names, on both databases: precise exit code, store unchanged."""
    _add_existing(cli)
    emitted.watch(NEW_VALUE, EXISTING_VALUE)
    url = settings.resolved_database_url
    before = db_rows(url)
    problems = _run_cases(run_cli, STORE_CASES)
    assert not problems, "\n".join(problems)
    assert db_rows(url) == before


def _files(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


@pytest.fixture
def broken_homes(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Initialised homes, each with one credential, then broken in one way each."""
    homes = {}
    for kind in (
        "garbage db",
        "malformed db",
        "key 0644",
        "key too short",
        "key not base64",
        "key missing",
    ):
        home = tmp_path / kind.replace(" ", "-")
        monkeypatch.setenv("PERMATOKEN_HOME", str(home))
        assert cli("init").rc == 0
        _add_existing(cli)
        homes[kind] = home
    db = "permatoken.db"
    (homes["garbage db"] / db).write_bytes(os.urandom(4096) * 8)
    malformed = bytearray((homes["malformed db"] / db).read_bytes())
    malformed[100:] = os.urandom(len(malformed) - 100)  # keep the SQLite header, ruin the pages
    (homes["malformed db"] / db).write_bytes(bytes(malformed))
    for home in (homes["garbage db"], homes["malformed db"]):
        for suffix in ("-wal", "-shm"):
            (home / (db + suffix)).unlink(missing_ok=True)
    (homes["key 0644"] / "key").chmod(0o644)
    (homes["key too short"] / "key").write_text("c2hvcnQ=\n")
    (homes["key not base64"] / "key").write_text("this is not a key\n")
    (homes["key missing"] / "key").unlink()
    return homes


BROKEN_CASES = [
    ("garbage db", 5, "is corrupted or not a permatoken database"),
    ("malformed db", 5, "is corrupted or not a permatoken database"),
    ("key 0644", 6, "readable by others (mode 0644)"),
    ("key too short", 6, "key is 5 bytes, expected 32"),
    ("key not base64", 6, "not valid base64"),
    ("key missing", 6, "does not exist"),
]


def test_broken_homes(
    broken_homes: dict[str, Path],
    run_cli: Any,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    emitted: Any,
) -> None:
    """Each broken home: status, get and add all fail precisely and change no file."""
    emitted.watch(NEW_VALUE, EXISTING_VALUE)
    before = {kind: _files(home) for kind, home in broken_homes.items()}
    modes = {
        kind: (home / "key").stat().st_mode
        for kind, home in broken_homes.items()
        if (home / "key").exists()
    }
    calls, expect, in_process = [], [], []
    add = (("add", "acme/new", "--never-expires"), NEW_VALUE)
    for kind, code, text in BROKEN_CASES:
        env = {"PERMATOKEN_HOME": str(broken_homes[kind])}
        # `status` in a real process for every kind; `add` (which reads a token first) too for
        # two of them; the other commands in-process.
        for i, (argv, stdin) in enumerate(
            ((("status", "--json"), None), add, (("get", EXISTING), None))
        ):
            real = i == 0 or (i == 1 and kind in ("garbage db", "key 0644"))
            expect.append((f"{kind}: {' '.join(argv)}", code, text))
            calls.append((argv, {"input": stdin, "env": env}) if real else None)
            in_process.append(None if real else (env["PERMATOKEN_HOME"], argv, stdin))
    real_results = iter(run_cli.many([c for c in calls if c is not None]))
    results = []
    for job in in_process:
        if job is None:
            results.append(next(real_results))
        else:
            monkeypatch.setenv("PERMATOKEN_HOME", job[0])
            results.append(cli(*job[1], input=job[2]))
    problems = []
    for (case, code, text), r in zip(expect, results, strict=True):
        if r.rc != code or text not in r.stderr or "hint:" not in r.stderr:
            problems.append(f"{case}: exit {r.rc} (expected {code}): {r.stderr.strip()}")
        if r.stdout.strip():
            problems.append(f"{case}: printed on stdout: {r.stdout.strip()}")
    assert not problems, "\n".join(problems)
    assert {kind: _files(home) for kind, home in broken_homes.items()} == before
    assert {
        kind: (home / "key").stat().st_mode
        for kind, home in broken_homes.items()
        if (home / "key").exists()
    } == modes


def test_unreachable_database_names_host_and_port_not_password(
    home: Path, run_cli: Any, cli: Any, monkeypatch: pytest.MonkeyPatch, emitted: Any
) -> None:
    """Nobody answers at the URL: exit 5, the message names 127.0.0.1:1, never the password."""
    url = "postgresql+psycopg://u:sekrit@127.0.0.1:1/db"
    home.mkdir()
    write_key_file(home / "key", [generate_key()])
    emitted.watch("sekrit", NEW_VALUE)
    results = [
        run_cli("--database-url", url, "add", "acme/new", "--never-expires", input=NEW_VALUE),
        _with_env(monkeypatch, "PERMATOKEN_DATABASE_URL", url, lambda: cli("status")),
        cli("--database-url", url, "init"),
    ]
    for r in results:
        assert r.rc == 5, r.stderr
        assert "cannot connect to PostgreSQL at 127.0.0.1:1" in r.stderr
        assert "hint:" in r.stderr
    assert load_settings().database_url is None


def _with_env(monkeypatch: pytest.MonkeyPatch, key: str, value: str, fn: Any) -> Any:
    with monkeypatch.context() as m:
        m.setenv(key, value)
        return fn()


def test_database_url_of_another_kind(
    home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", "mysql://u:sekrit@h/db")
    r = cli("status")
    assert r.rc == 7 and "unsupported database 'mysql'" in r.stderr and "sekrit" not in r.output
