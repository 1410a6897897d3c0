"""``permatoken import`` refuses a file it cannot import as a whole: one error line, a hint that
names a real command, the input-error exit code, no traceback, nothing stored."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from cli.test_hints import commands_in, problem_with
from permatoken.cli import _import_commands, app
from permatoken.cli.exit_codes import EXIT_CODES
from permatoken.settings import Settings

TOKEN = "EAAimportfile" + "k" * 30


def private(path: Path, data: bytes) -> Path:
    """An import file as the CLI demands it: mode 600 (it holds tokens)."""
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


def _input_error_code() -> int:
    from permatoken._exceptions import InputError

    return dict(EXIT_CODES)[InputError]


def _missing(tmp: Path) -> Path:
    return tmp / "no-such-file.csv"


def _directory(tmp: Path) -> Path:
    d = tmp / "tokens.csv"
    d.mkdir()
    os.chmod(d, 0o700)
    return d


def _latin1(tmp: Path) -> Path:
    return private(tmp / "latin1.csv", f"name,token\nacme/café,{TOKEN}\n".encode("latin-1"))


def _late_latin1(tmp: Path) -> Path:
    """Valid rows first, the bad byte far past the first read: still nothing is stored."""
    rows = "".join(f"acme/ok{i},{TOKEN}{i},never\n" for i in range(400))
    body = ("name,token,expires_at\n" + rows).encode() + "acme/é,x,never\n".encode("latin-1")
    return private(tmp / "late.csv", body)


def _empty(tmp: Path) -> Path:
    return private(tmp / "empty.csv", b"")


def _header_only(tmp: Path) -> Path:
    return private(tmp / "header.csv", b"name,token,expires_at\n\n")


def _empty_jsonl(tmp: Path) -> Path:
    return private(tmp / "empty.jsonl", b"\n  \n")


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "No such file"),
    "directory": (_directory, "is a directory"),
    "not utf-8": (_latin1, "not UTF-8"),
    "not utf-8 late in the file": (_late_latin1, "not UTF-8"),
    "empty": (_empty, "no row to import"),
    "header only": (_header_only, "no row to import"),
    "empty json lines": (_empty_jsonl, "no row to import"),
}


@pytest.fixture(scope="module")
def root() -> Any:
    _import_commands()
    return typer.main.get_command(app)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(CASES))
def test_a_file_that_cannot_be_imported_gets_an_error_and_a_hint_and_stores_nothing(
    case: str,
    settings: Settings,
    cli: Any,
    root: Any,
    tmp_path: Path,
    db_rows: Any,
) -> None:
    make, says = CASES[case]
    path = make(tmp_path)
    url = settings.resolved_database_url
    before = db_rows(url)
    r = cli("import", str(path), "--offline")
    assert r.rc == _input_error_code(), r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    hints = [line for line in lines if line.strip().startswith("hint:")]
    assert len(errors) == 1 and says in errors[0], r.stderr
    assert len(hints) == 1, r.stderr
    named = commands_in(hints[0])
    assert named, hints[0]
    for command_line in named:
        assert problem_with(command_line, root) is None, (command_line, hints[0])
    assert r.stdout == ""
    assert db_rows(url) == before


def test_a_header_followed_by_rows_is_not_called_empty(tmp_path: Path) -> None:
    from permatoken.providers.import_file import check_file

    check_file(private(tmp_path / "one.csv", f"name,token\n\n,,\nacme/a,{TOKEN}\n".encode()))
    check_file(private(tmp_path / "one.jsonl", f'\n{{"name":"a","token":"{TOKEN}"}}\n'.encode()))
