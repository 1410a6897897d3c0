"""Start-up cost: `import permatoken`, `--help` and read-only commands load only what they use.

Measured as ratios by ``bench/bench_startup.py``; here the cause is checked directly (which
modules a fresh process has loaded), so the test cannot flake on a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import typer

from permatoken.cli import _import_commands, app
from permatoken.cli.app import build_command
from permatoken.settings import Settings
from permatoken.store import engine as store_engine

#: Top-level packages that `import permatoken` and `permatoken --help` must not load.
HEAVY = ("httpx", "httpcore", "sqlalchemy", "alembic", "rich", "pydantic", "cryptography", "anyio")
#: What a read-only command has no use for (the store is read with SQLAlchemy alone).
NOT_FOR_READING = (
    "alembic",
    "httpx",
    "httpcore",
    "anyio",
    "uvicorn",
    "starlette",
    "apprise",
    "prometheus_client",
)

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(code: str, **kwargs: Any) -> set[str]:
    """The top-level packages a fresh process has loaded after running ``code``."""
    return {name.split(".")[0] for name in _loaded_modules(code, **kwargs)}


def _loaded_modules(code: str, **kwargs: Any) -> set[str]:
    """Every module (dotted name) a fresh process has loaded after running ``code``."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
        **kwargs,
    )
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_import_permatoken_loads_no_client_database_or_cli_libraries() -> None:
    """`import permatoken` keeps its public names (lazily) without importing httpx & co."""
    loaded = _loaded("import permatoken")
    assert not loaded & {*HEAVY, "typer", "click"}, sorted(loaded & {*HEAVY, "typer", "click"})
    names = _loaded(
        "import permatoken\n"
        "assert permatoken.WhatsAppClient.__name__ == 'WhatsAppClient'\n"
        "assert set(permatoken.__all__) <= set(dir(permatoken))"
    )
    assert "httpx" in names  # the names still work: loaded on first use


def test_help_loads_no_heavy_library() -> None:
    """`permatoken --help` lists every command without Rich, pydantic, SQLAlchemy or httpx."""
    loaded = _loaded("from permatoken.cli import main\nmain(['--help'])")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_command_is_built_when_it_is_used_not_before() -> None:
    """`permatoken X` turns only X into a Click command; the names and their order are Typer's."""
    _import_commands()
    eager = typer.main.get_command(app)
    lazy = build_command(app)
    assert list(lazy.commands) == list(eager.commands)  # type: ignore[attr-defined]
    assert lazy.commands.built() == []
    status = lazy.get_command(None, "status")
    assert lazy.commands.built() == ["status"]
    assert [p.name for p in status.params] == [p.name for p in eager.commands["status"].params]  # type: ignore[attr-defined]
    assert [p.name for p in lazy.params] == [p.name for p in eager.params]
    keys = lazy.get_command(None, "keys")
    assert list(keys.commands) == list(eager.commands["keys"].commands)  # type: ignore[attr-defined]
    assert lazy.get_command(None, "no-such-command") is None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_status_reads_the_store_without_alembic_or_httpx(settings: Settings, cli: Any) -> None:
    """`status` checks the schema with a plain query: no Alembic, no HTTP client."""
    assert cli("add", "acme/m", "--offline", "--never-expires", input="zqStartup0123456").rc == 0
    loaded = _loaded("from permatoken.cli import main\nassert main(['status', '--json']) == 0")
    assert not loaded & set(NOT_FOR_READING), sorted(loaded & set(NOT_FOR_READING))
    assert "sqlalchemy" in loaded  # it did read the store


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_status_prints_the_last_backup_without_the_backup_machinery(
    settings: Settings, cli: Any
) -> None:
    """The "last backup" line reads the backup log: no backup writer, reader or metric."""
    assert cli("add", "acme/m", "--offline", "--never-expires", input="zqStartup0123456").rc == 0
    modules = _loaded_modules("from permatoken.cli import main\nassert main(['status']) == 0")
    assert "permatoken.backup.status" in modules  # it did print the line
    unused = {f"permatoken.backup.{m}" for m in ("create", "restore", "verify", "metric")}
    assert not modules & unused, sorted(modules & unused)
    assert "prometheus_client" not in modules


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_status_loads_the_keys_without_the_cipher(settings: Settings, cli: Any) -> None:
    """`status` loads the keyring (a bad key file still fails) but never seals or opens a value,
    so `cryptography` is not imported; `get`, which opens one, does import it."""
    assert cli("add", "acme/m", "--offline", "--never-expires", input="zqStartup0123456").rc == 0
    loaded = _loaded("from permatoken.cli import main\nassert main(['status']) == 0")
    assert "cryptography" not in loaded
    assert "permatoken.live_keyring" in _loaded_modules(
        "from permatoken.cli import main\nassert main(['status', '--json']) == 0"
    )
    opened = _loaded("from permatoken.cli import main\nassert main(['get', 'acme/m']) == 0")
    assert "cryptography" in opened


EXIT_PROBE = """
import atexit, gc, sys
atexit.register(lambda: sys.stderr.write(f"frozen at exit: {gc.get_freeze_count()}\\n"))
from permatoken.cli import main
assert main(["status", "--json"]) == 0 and gc.get_freeze_count() == 0  # called as a function
sys.argv = ["permatoken", "status", "--json"]
main()
"""


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_command_spares_the_process_the_garbage_collection_at_exit(
    settings: Settings, cli: Any
) -> None:
    """Run as the `permatoken` command, `main` freezes what the libraries built before the process
    exits (shutdown would scan it all: ~150 ms); called as a function it leaves gc alone."""
    assert cli("add", "acme/m", "--offline", "--never-expires", input="zqStartup0123456").rc == 0
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.split("\n]\n", 1)  # the end of the first top-level array
    assert json.loads(first + "\n]") == json.loads(second)  # the same output both ways
    assert int(proc.stderr.rsplit("frozen at exit: ", 1)[1]) > 10_000


def test_known_head_is_alembics_head() -> None:
    """The head read from the migration files is the one Alembic computes."""
    assert store_engine.known_head() == store_engine.head_revision()
