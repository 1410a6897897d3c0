"""Help texts and global options: what a user reads before anything happens."""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest
import typer

from permatoken.cli import _import_commands, app


def _all_commands() -> list[tuple[list[str], Any]]:
    _import_commands()
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return found


def test_usage_lines_leave_out_hidden_parameters(cli: Any) -> None:
    """The traps for secrets given on argv (`add NAME VALUE`) are hidden, in usage lines too."""
    checked = 0
    for path, command in _all_commands():
        hidden = [
            p
            for p in command.params
            if getattr(p, "hidden", False) and getattr(p, "param_type_name", "") == "argument"
        ]
        if not hidden:
            continue
        usage = cli(*path, "--help").stdout.splitlines()[0]
        for param in hidden:
            checked += 1
            # Click shows an argument as NAME or [NAME]; Typer >= 0.2x as {name} or [name].
            piece = re.compile(rf"(^|[\s\[{{]){re.escape(param.name)}([\s\]}}.]|$)", re.I)
            assert not piece.search(usage.split("[OPTIONS]", 1)[-1]), f"{path}: {usage}"
    assert checked >= 2  # add VALUE, app add SECRET


def test_version(cli: Any) -> None:
    r = cli("--version")
    assert r.rc == 0 and r.stdout == f"permatoken {version('permatoken')}\n"


def test_exec_help_shows_its_example_on_a_line_of_its_own(cli: Any) -> None:
    lines = [line.strip() for line in cli("exec", "--help").stdout.splitlines()]
    assert "permatoken exec --env WHATSAPP_TOKEN=acme/messaging -- python app.py" in lines
    assert any(line.startswith("The exit status is the command's") for line in lines)


def test_help_lists_commands_in_the_order_a_user_meets_them(cli: Any) -> None:
    out = cli("--help").stdout
    commands = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert commands[:4] == ["init", "add", "update", "status"], commands


@pytest.mark.parametrize(
    ("argv", "env", "names", "not_named"),
    [
        (("--database-url", "foo://", "status"), {}, "--database-url", "PERMATOKEN_DATABASE_URL"),
        (
            ("status",),
            {"PERMATOKEN_DATABASE_URL": "foo://"},
            "PERMATOKEN_DATABASE_URL",
            "--database",
        ),
        (("--database-url", "no url", "status"), {}, "--database-url", "PERMATOKEN_DATABASE_URL"),
    ],
)
def test_a_bad_database_url_names_where_it_came_from(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    env: dict[str, str],
    names: str,
    not_named: str,
) -> None:
    """`--database-url foo://` is blamed on --database-url, not on an environment variable."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    r = cli(*argv)
    assert r.rc == 7, r.stderr
    assert names in r.stderr and not_named not in r.stderr.split("hint:")[0], r.stderr
    assert "sqlite:///" in r.stderr  # the hint shows what a URL looks like
