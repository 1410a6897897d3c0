"""Fixtures shared by the whole suite.

- Every test runs with a clean ``PERMATOKEN_*`` environment and its own ``PERMATOKEN_HOME``.
- ``store_url`` runs a test on SQLite and on PostgreSQL; each PostgreSQL test gets a database of
  its own (created from ``PERMATOKEN_TEST_PG_URL``, dropped afterwards). Without a reachable
  PostgreSQL those tests skip, unless ``CI`` is set: then they fail.
- ``settings`` / ``store``: an initialised store (migrations run, key file written).
- ``run_cli``: the real ``permatoken`` command in a subprocess (exit codes, stdin, no traceback);
  ``cli``: the same command in-process through ``permatoken.cli.main(argv)``, for speed.
- ``emitted``: everything a test let out (CLI stdout/stderr, log records), to scan for a secret.
- Live sandboxes (``_live_sandbox``) must all be stopped by the end of the session.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import string
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa

from permatoken import _secret
from permatoken.settings import Settings, load_settings

PG_ENV = "PERMATOKEN_TEST_PG_URL"
PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TABLES = ("credentials", "versions", "credential_secrets", "apps", "events")


# --- environment ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PERMATOKEN_* setting leaks in from the developer's shell; each test has its own home."""
    for key in list(os.environ):
        if key.startswith("PERMATOKEN_") and key != PG_ENV:
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("PERMATOKEN_HOME", str(home))
    return home


#: Module-level state of the log redaction registry (whichever of these exist).
_REDACTION_STATE = ("_known", "_odd", "_known_pattern")


@pytest.fixture(autouse=True)
def _reset_known_secrets() -> Iterator[None]:
    """Secrets registered for log redaction are process-global: forget them after each test."""
    saved = {}
    with _secret._known_lock:
        for attr in _REDACTION_STATE:
            if hasattr(_secret, attr):
                value = getattr(_secret, attr)
                saved[attr] = value.copy() if isinstance(value, set | list | dict) else value
    yield
    with _secret._known_lock:
        for attr, value in saved.items():
            current = getattr(_secret, attr)
            if isinstance(current, list):
                current[:] = value
            elif isinstance(current, set | dict):
                current.clear()
                current.update(value)
            else:
                setattr(_secret, attr, value)


@pytest.fixture(autouse=True, scope="session")
def _no_leaked_sandboxes() -> Iterator[None]:
    """Every sandbox server a test started (thread or process) is stopped by the session's end."""
    yield
    live = sys.modules.get("_live_sandbox")
    leaked = live.still_running() if live is not None else []
    assert not leaked, f"sandbox servers left running: {', '.join(leaked)}"


@pytest.fixture
def home(_isolated_env: Path) -> Path:
    """This test's PERMATOKEN_HOME (not created yet)."""
    return _isolated_env


def random_token(prefix: str = "zq", length: int = 48) -> str:
    """A token-like value with no recognisable shape, so only exact matching can hide it."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


# --- PostgreSQL -------------------------------------------------------------------------


def pg_admin_url() -> str:
    return os.environ.get(PG_ENV) or PG_DEFAULT_URL


def _libpq(url: str | sa.URL) -> str:
    """An SQLAlchemy URL as a libpq connection string for psycopg."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


_pg_problem: list[str | None] = []  # memo: [None] reachable, [message] not


def _pg_unreachable() -> str | None:
    """None if PostgreSQL answers, else a one-line reason (checked once per session)."""
    if not _pg_problem:
        url = sa.make_url(pg_admin_url())
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        try:
            import psycopg

            with psycopg.connect(_libpq(url), connect_timeout=3):
                pass
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _pg_problem.append(f"PostgreSQL not reachable at {where} ({first})")
        else:
            _pg_problem.append(None)
    return _pg_problem[0]


def require_postgres() -> None:
    """Skip (or, when CI is set, fail) a test that needs PostgreSQL if it does not answer."""
    problem = _pg_unreachable()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem}; CI is set, so PostgreSQL tests must run (set {PG_ENV})")
    pytest.skip(problem.split(" (")[0])


class _PgDatabases:
    """Creates a database per test and drops it in the background (the next test need not wait).

    Databases for tests that initialise a store are cloned from a template already at the head
    schema, which is cheaper than running the migrations each time; the migrations themselves
    are tested on empty databases.
    """

    def __init__(self) -> None:
        import concurrent.futures

        self.admin = sa.make_url(pg_admin_url())
        self._template: str | None = None
        self._dropper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pg-drop")
        self._drops: list[Any] = []

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(_libpq(self.admin), autocommit=True) as conn:
            conn.execute(sql)

    def url(self, name: str) -> str:
        return self.admin.set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool = False) -> str:
        name = f"pt_{secrets.token_hex(6)}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        self._execute(f'CREATE DATABASE "{name}"{template}')
        return name

    def drop_later(self, name: str) -> None:
        self._drops.append(
            self._dropper.submit(self._execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )

    def _migrated_template(self) -> str:
        if self._template is None:
            from permatoken.store import engine as store_engine

            name = f"pt_template_{secrets.token_hex(6)}"
            self._execute(f'CREATE DATABASE "{name}"')
            engine = store_engine.create_engine(self.url(name))
            try:
                store_engine.upgrade(engine)
            finally:
                engine.dispose()
            self._template = name
        return self._template

    def close(self) -> None:
        for fut in self._drops:
            fut.result()
        if self._template is not None:
            self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self._dropper.shutdown()


_pg_databases: list[_PgDatabases] = []


def _pg() -> _PgDatabases:
    if not _pg_databases:
        _pg_databases.append(_PgDatabases())
    return _pg_databases[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _pg_databases:
        _pg_databases.pop().close()


@contextmanager
def fresh_pg_database(*, migrated: bool = False) -> Iterator[str]:
    """A brand-new PostgreSQL database for one test (empty, or at the head schema)."""
    require_postgres()
    pg = _pg()
    name = pg.create(migrated=migrated)
    try:
        yield pg.url(name)
    finally:
        pg.drop_later(name)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """The database URL, once for SQLite (the default file in the home) and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{home / 'permatoken.db'}"
        return
    # A test that initialises a store gets a database already at the head schema.
    with fresh_pg_database(migrated="settings" in request.fixturenames) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, for tests that only make sense there."""
    with fresh_pg_database() as url:
        yield url


# --- an initialised store -----------------------------------------------------------------


def init_store(settings: Settings) -> None:
    """What `permatoken init` does, through the library: home, key file, migrations."""
    from permatoken.crypto import generate_key, write_key_file
    from permatoken.store import engine as store_engine

    settings.home.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.home, 0o700)
    if settings.key is None and not settings.resolved_key_file.exists():
        write_key_file(settings.resolved_key_file, [generate_key()])
    engine = store_engine.create_engine(settings.resolved_database_url)
    try:
        store_engine.upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture
def settings(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for an initialised store; the environment says the same, so subprocesses agree."""
    if not store_url.startswith("sqlite"):
        monkeypatch.setenv("PERMATOKEN_DATABASE_URL", store_url)
    s = load_settings()
    assert s.resolved_database_url == store_url
    init_store(s)
    return s


@pytest.fixture
def store(settings: Settings) -> Iterator[Any]:
    from permatoken.store import open_store

    st = open_store(settings)
    try:
        yield st
    finally:
        st.close()


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """A raw connection in a transaction, to inspect or vandalise the database behind a test."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every permatoken table, to prove a failed command changed nothing."""
    with connect(url) as conn:
        return {
            t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1"))]
            for t in TABLES
        }


# --- emitted output -----------------------------------------------------------------------


class Emitted:
    """Everything the code under test let out: CLI stdout/stderr and log records.

    Tests record what they capture with :meth:`add` (``run_cli`` and ``cli`` do it for every
    command) and ask :meth:`sources_containing` / :meth:`assert_absent` about a secret. Values
    given to :meth:`watch` are checked automatically when the test ends. Log records are scanned
    raw, before any redaction filter: code must not rely on redaction to hide stored tokens.
    """

    def __init__(self, parent: Emitted | None = None) -> None:
        self.items: list[tuple[str, str]] = []
        self.watched: set[str] = set()
        self._parent = parent
        self._log_sources: list[Callable[[], list[tuple[str, str]]]] = []

    def add(self, source: str, text: str | bytes | None) -> None:
        if not text:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.items.append((source, text))
        if self._parent is not None:
            self._parent.add(source, text)

    def watch(self, *values: str) -> None:
        """These values must never appear in anything this test emits."""
        self.watched.update(values)

    def all_items(self) -> list[tuple[str, str]]:
        items = list(self.items)
        for source in self._log_sources:
            items.extend(source())
        return items

    def sources_containing(self, value: str) -> list[str]:
        return [source for source, text in self.all_items() if value in text]

    def assert_absent(self, *values: str) -> None:
        for value in values:
            found = self.sources_containing(value)
            assert not found, f"a secret value appeared in: {', '.join(found)}"


@pytest.fixture(scope="session")
def emitted_session() -> Emitted:
    """Everything emitted by every test of the session (CLI output and logs)."""
    return Emitted()


@pytest.fixture
def emitted(emitted_session: Emitted, caplog: pytest.LogCaptureFixture) -> Iterator[Emitted]:
    """This test's emitted output, with every log record (all loggers, DEBUG and up).

    SQLAlchemy caps its own loggers at WARNING; here its engine logs SQL, parameters and rows,
    so a value that reached the database in the clear shows up as emitted too.
    """
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    em = Emitted(parent=emitted_session)

    def logs() -> list[tuple[str, str]]:
        # caplog.records holds the current phase only: at teardown (where watched values are
        # checked) that would miss every record the test body logged.
        records = {id(r): r for when in ("setup", "call") for r in caplog.get_records(when)}
        records.update((id(r), r) for r in caplog.records)
        out = []
        for rec in records.values():
            text = rec.getMessage()
            if rec.exc_text:
                text += "\n" + rec.exc_text
            out.append((f"log {rec.name}", text))
        return out

    em._log_sources.append(logs)
    yield em
    for value in em.watched:
        found = em.sources_containing(value)
        assert not found, f"a watched secret appeared in: {', '.join(found)}"
    emitted_session.items.extend(logs())


# --- the CLI ------------------------------------------------------------------------------


class CliResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


_WARNING = re.compile(r"\b\w*Warning: ")


def _check_clean(result: CliResult, args: tuple[str, ...]) -> None:
    assert not _WARNING.search(result.stderr), (
        f"permatoken {' '.join(args)} warned:\n{result.stderr}"
    )
    assert "Traceback" not in result.output, (
        f"permatoken {' '.join(args)} printed a traceback:\n{result.output}"
    )
    assert "internal error" not in result.stderr, f"permatoken {' '.join(args)}: {result.stderr}"


class CliRunner:
    """Runs ``python -m permatoken ARGS`` in subprocesses; see the ``run_cli`` fixture."""

    def __init__(self, emitted: Emitted) -> None:
        self.emitted = emitted

    def __call__(
        self,
        *args: str,
        input: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
        record: bool = True,
        timeout: float = 120,
    ) -> CliResult:
        full_env = dict(os.environ)
        full_env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [sys.executable, "-m", "permatoken", *args],
            input=data if data is not None else b"",
            capture_output=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
        result = CliResult(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )
        if record:
            self.emitted.add(f"stdout of `permatoken {' '.join(args)}`", result.stdout)
        self.emitted.add(f"stderr of `permatoken {' '.join(args)}`", result.stderr)
        _check_clean(result, args)
        return result

    def many(self, calls: list[tuple[tuple[str, ...], dict[str, Any]]]) -> list[CliResult]:
        """Run independent invocations ``[(args, kwargs), ...]`` concurrently; results in order.

        Each subprocess spends most of its life importing, so this roughly divides the wall
        time of a batch by the number of cores.
        """
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            futures = [pool.submit(self, *args, **kwargs) for args, kwargs in calls]
            return [f.result() for f in futures]


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(emitted_session: Emitted, request: pytest.FixtureRequest) -> CliRunner:
    """Run ``python -m permatoken ARGS`` in a subprocess: ``run_cli(*args, input=, env=)``.

    ``input`` (str or bytes) goes to stdin (otherwise stdin is empty and not a terminal);
    ``env`` entries override the current environment (``None`` removes one). Output is recorded
    in the ``emitted`` collector unless ``record=False`` (for output that is meant to hold a
    secret, such as ``get``). A traceback or an internal error fails the test.
    ``run_cli.many([(args, kwargs), ...])`` runs independent invocations concurrently.
    """
    uses_emitted = "emitted" in request.fixturenames
    return CliRunner(request.getfixturevalue("emitted") if uses_emitted else emitted_session)


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    emitted_session: Emitted,
    request: pytest.FixtureRequest,
) -> RunCli:
    """``permatoken.cli.main(argv)`` in this process (faster than ``run_cli``, same contract)."""
    import io

    from permatoken.cli import main

    em: Emitted = (
        request.getfixturevalue("emitted") if "emitted" in request.fixturenames else emitted_session
    )

    def run(
        *args: str, input: str | bytes | None = None, record: bool = True, **_: Any
    ) -> CliResult:
        data = input.encode() if isinstance(input, str) else (input or b"")
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        result = CliResult(rc, out, err)
        if record:
            em.add(f"stdout of in-process `permatoken {' '.join(args)}`", out)
        em.add(f"stderr of in-process `permatoken {' '.join(args)}`", err)
        _check_clean(result, args)
        return result

    return run


@pytest.fixture
def new_token() -> Callable[..., str]:
    """``new_token(prefix="zq")``: a fresh random token value."""
    return random_token


@pytest.fixture
def raw_db() -> Callable[[str], Any]:
    """``with raw_db(url) as conn``: a raw SQLAlchemy connection in a transaction."""
    return connect


@pytest.fixture
def db_rows() -> Callable[[str], dict[str, list[tuple[Any, ...]]]]:
    """``db_rows(url)``: every row of every permatoken table."""
    return snapshot
