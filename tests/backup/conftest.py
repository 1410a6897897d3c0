"""Fixtures for the backup tests: a seeded store, a key file, a passphrase file, targets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from permatoken.settings import Settings

from ._world import new_secret, seed_small


@pytest.fixture
def seeded(store: Any) -> list[str]:
    """The test's store with rows in every table; the secrets it holds (watch them)."""
    return seed_small(store)


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(new_secret() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def target_home(tmp_path: Path) -> Path:
    """A second home, for the machine a backup is restored on (nothing in it yet)."""
    return tmp_path / "target"


@pytest.fixture
def key_env(settings: Settings) -> dict[str, str]:
    """Environment for a CLI run against another home that must use this store's key file."""
    return {"PERMATOKEN_KEY_FILE": str(settings.resolved_key_file)}


@pytest.fixture
def other_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """An empty database on the *other* engine than the test's store (SQLite <-> PostgreSQL)."""
    from conftest import fresh_pg_database

    if settings.resolved_database_url.startswith("sqlite"):
        with fresh_pg_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'target.db'}"


def file_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


@pytest.fixture
def sealed_backup(seeded: list[str], passphrase_file: Path, tmp_path: Path, cli: Any) -> Path:
    """A backup of the seeded store written with the passphrase (the keys sealed in it)."""
    out = tmp_path / "sealed.ptbackup"
    made = cli("backup", "--out", str(out), "--passphrase-file", str(passphrase_file))
    assert made.rc == 0, made.stderr
    return out
