"""Every `permatoken …` command a hint names exists, with the options it names.

Two sources: every string in ``src/permatoken`` (hints, advice, notices, docstrings; f-string
fields and ``+`` concatenations rendered with a placeholder), and the hints the error paths
actually print. Each command is resolved in the Typer command tree: the subcommands must exist,
every ``--option`` must belong to the command, and positional words must fit its arguments.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from permatoken.cli import _import_commands, app
from permatoken.settings import Settings

SRC = Path(__file__).resolve().parents[2] / "src" / "permatoken"
PLACEHOLDER = "acme/x"
#: A command quoted in backticks, or on a line of its own (indented, as in notices and help).
QUOTED = re.compile(r"`permatoken ([^`]+)`")
ON_ITS_OWN_LINE = re.compile(r"(?m)^\s{2,}permatoken ([a-z][^\n]*)$")
#: Where a command line ends: shell syntax, or prose after it.
STOPS = {"<", ">", "|", ";", "&&", "(or", "--"}
ELISIONS = {"…", "...", "ARGS…"}


def _render(node: ast.AST) -> str | None:
    """The text of a string expression, with every computed part replaced by PLACEHOLDER."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(
            _render(v) or "" if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left), _render(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else PLACEHOLDER) + (
            right if right is not None else PLACEHOLDER
        )
    return None


def source_texts() -> Iterator[tuple[str, str]]:
    """(where, text) for every string expression in the package (outermost only)."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        inner: set[int] = set()
        for node in ast.walk(tree):
            if id(node) in inner:
                continue
            text = _render(node)
            if text is None:
                continue
            inner.update(id(n) for n in ast.walk(node))
            yield f"{path.relative_to(SRC.parent)}:{getattr(node, 'lineno', '?')}", text


def commands_in(text: str) -> list[str]:
    return QUOTED.findall(text) + ON_ITS_OWN_LINE.findall(text)


def _params(command: Any) -> tuple[dict[str, Any], list[Any]]:
    options = {}
    arguments = []
    # get_params: the command's own parameters plus the help option Click gives every command.
    for param in command.get_params(click.Context(command)):
        if getattr(param, "param_type_name", "") == "argument":
            arguments.append(param)
        else:
            for name in (*param.opts, *param.secondary_opts):
                options[name] = param
    return options, arguments


def problem_with(command_line: str, root: Any) -> str | None:
    """Why ``permatoken <command_line>`` would not run as written, or None."""
    try:
        words = shlex.split(command_line)
    except ValueError:
        words = command_line.split()
    cut = next((i for i, w in enumerate(words) if w in STOPS), len(words))
    words = [w for w in words[:cut] if w not in ELISIONS]
    command, path = root, []
    while words and hasattr(command, "commands") and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        if sub is None:
            return f"no command `permatoken {' '.join([*path, words[0]])}`"
        path.append(words.pop(0))
        command = sub
    if hasattr(command, "commands") and not command.invoke_without_command:
        return f"`permatoken {' '.join(path)}` is a group: a subcommand is missing"
    options, arguments = _params(command)
    positional = 0
    while words:
        word = words.pop(0)
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            if name not in options:
                return f"`permatoken {' '.join(path)}` has no option {name}"
            if not options[name].is_flag and "=" not in word and words:
                words.pop(0)
            continue
        positional += 1
    takes = sum(1 if a.nargs == 1 else 10**6 for a in arguments if not a.hidden)
    if positional > takes:
        return (
            f"`permatoken {' '.join(path)}` takes {takes} argument(s), the hint gives {positional}"
        )
    return None


@pytest.fixture(scope="module")
def root() -> Any:
    _import_commands()
    return typer.main.get_command(app)


def test_the_checker_catches_what_it_should(root: Any) -> None:
    """The names this test exists for are refused; real commands pass."""
    assert problem_with("status acme/x", root) is None
    assert problem_with("update acme/x --app-id APP_ID", root) is None
    assert problem_with("rotate acme/x --token-file FILE", root) is None
    assert problem_with("add … --option system_user_id=VALUE", root) is None
    assert problem_with("frobnicate acme/x", root) == "no command `permatoken frobnicate`"
    assert "has no option --app-ids" in (problem_with("update acme/x --app-ids 1", root) or "")
    assert "takes 1 argument" in (problem_with("get acme/x acme/y", root) or "")
    assert problem_with("import --help", root) is None  # every command has its --help
    assert "has no option --helpp" in (problem_with("import --helpp", root) or "")
    assert "is a group" in (problem_with("keys", root) or "")
    # a group that runs on its own (``backup --out FILE``) takes its own options
    assert problem_with("backup --out FILE", root) is None
    assert "has no option --outt" in (problem_with("backup --outt FILE", root) or "")


def test_every_command_named_in_the_source_exists(root: Any) -> None:
    """Hints, advice, notices and help texts name only commands and options that exist."""
    found, problems = 0, []
    for where, text in source_texts():
        for command_line in commands_in(text):
            found += 1
            problem = problem_with(command_line, root)
            if problem:
                problems.append(f"{where}: `permatoken {command_line}`: {problem}")
    assert found >= 30, found  # the collector still sees the hints
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_every_hint_the_error_paths_print_names_a_real_command(
    settings: Settings, cli: Any, root: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hints (and doctor's fixes) printed by a tour of refusals name real commands."""
    secret = tmp_path / "secret.txt"
    secret.write_text("zqHintsAppSecret0123")
    other = tmp_path / "other.txt"
    other.write_text("zqOtherAppSecret0123")
    token = "zqHintsToken0123456789"
    offline = ("--offline", "--never-expires")
    assert cli("add", "acme/offline", *offline, input=token).rc == 0
    assert (
        cli(
            "add",
            "acme/app",
            *offline,
            "--app-id",
            "555",
            "--app-secret-file",
            str(secret),
            input=token,
        ).rc
        == 0
    )
    runs: list[tuple[str, ...]] = [
        ("inspect", "acme/offline"),  # no app attached: how to attach one
        ("add", "acme/offline", *offline),  # taken
        ("add", "acme/new", "--app-id", "666"),  # app not registered
        ("add", "acme/new", *offline, "--app-id", "555", "--app-secret-file", str(other)),
        ("get", "acme/missing"),
        ("remove", "acme/app"),  # no --yes off a terminal
        ("policy", "set", "acme/app"),
        ("update", "acme/app"),
        ("update", "acme/app", "--unset-option", "nope"),
        ("keys", "revoke", "nokey"),
        ("--database-url", "mysql://h/db", "status"),
        ("--home", str(tmp_path / "nowhere"), "status"),
        ("--home", str(tmp_path / "nowhere"), "doctor"),
        ("inspect", "--token-file", str(secret)),
        ("add", "acme/new", "--never-expires", "--option", "broken"),
    ]
    printed = []
    for argv in runs:
        r = cli(*argv, input=token)
        assert r.rc != 0, argv
        hints = [
            line.split(":", 1)[1]
            for line in r.output.splitlines()
            if line.strip().startswith(("hint:", "fix:"))
        ]
        printed.extend((" ".join(argv), hint) for hint in hints)
    assert len(printed) >= 12, printed
    problems = []
    for argv, hint in printed:
        for command_line in commands_in(hint):
            problem = problem_with(command_line, root)
            if problem:
                problems.append(f"`permatoken {argv}` printed `{hint.strip()}`: {problem}")
    assert not problems, "\n".join(problems)


# --- attaching an app after an --offline add (the command the old hints promised) -----------


def test_update_attaches_an_app_after_an_offline_add_and_inspect_then_works(
    sandbox: Any, settings: Settings, cli: Any, tmp_path: Path, db_rows: Any
) -> None:
    """add --offline, inspect refuses (no app), `update NAME --app-id` fixes it, inspect works."""
    token = sandbox.token("system_user")
    secret = tmp_path / "app-secret.txt"
    secret.write_text(sandbox.app["secret"])
    assert cli("add", "acme/m", "--offline", "--never-expires", input=token).rc == 0
    refused = cli("inspect", "acme/m")
    assert refused.rc == 2 and "`permatoken update NAME --app-id APP_ID`" in refused.stderr
    app_id = sandbox.app["id"]
    url = settings.resolved_database_url
    before = db_rows(url)
    wrong = cli("update", "acme/m", "--app-id", app_id)  # app unknown and no secret: refused
    assert wrong.rc == 2 and "not registered" in wrong.stderr
    assert db_rows(url) == before
    done = cli("update", "acme/m", "--app-id", app_id, "--app-secret-file", str(secret), "--json")
    assert done.rc == 0, done.stderr
    assert done.json()["app_id"] == app_id
    inspected = cli("inspect", "acme/m", "--json")
    assert inspected.rc == 0, inspected.stderr
    assert inspected.json()["valid"] is True
