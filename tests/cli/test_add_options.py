"""`permatoken add --obtain` with an issuer's option missing: an input error (exit 2) naming the
option, with a hint naming a real command, before anything is stored or asked upstream."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer

from permatoken.cli import _import_commands, app
from permatoken.settings import Settings

from .test_hints import commands_in, problem_with

OBTAIN = ("--obtain", "--offline", "--never-expires")


@pytest.fixture(scope="module")
def root() -> Any:
    _import_commands()
    return typer.main.get_command(app)


def _secret_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_text("zqSecretValue0123456789")
    os.chmod(path, 0o600)
    return str(path)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("issuer", "extra", "says"),
    [
        ("login", ("--option", "username=ops"), "the login issuer needs option 'login_url'"),
        (
            "oauth2-refresh",
            ("--option", "client_id=abc"),
            "the oauth2-refresh issuer needs option 'token_url'",
        ),
        (
            "meta-system-mint",
            ("--option", "system_user_id=123"),
            "the meta-system-mint issuer needs option 'admin_credential'",
        ),
    ],
)
def test_add_obtain_without_a_required_option_is_an_input_error_with_a_hint(
    settings: Settings,
    cli: Any,
    root: Any,
    tmp_path: Path,
    db_rows: Any,
    issuer: str,
    extra: tuple[str, ...],
    says: str,
) -> None:
    secrets = (
        "--password-file",
        _secret_file(tmp_path, "password"),
        "--refresh-token-file",
        _secret_file(tmp_path, "refresh"),
    )
    url = settings.resolved_database_url
    before = db_rows(url)
    r = cli("add", "acme/x", "--issuer", issuer, *OBTAIN, *extra, *secrets)
    assert r.rc == 2, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], r.stderr
    hints = [line for line in r.stderr.splitlines() if line.strip().startswith("hint:")]
    assert hints, r.stderr
    named = [c for hint in hints for c in commands_in(hint)]
    assert named, hints
    for command_line in named:
        assert problem_with(command_line, root) is None, (command_line, hints)
    assert db_rows(url) == before
