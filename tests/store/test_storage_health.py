"""A SQLite store whose file is deleted, replaced, locked or read-only under a running process."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import init_store, random_token
from permatoken._exceptions import StoreUnavailableError
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.server.errors import status_for
from permatoken.settings import Settings, load_settings
from permatoken.store import Store, open_store
from permatoken.store.engine import translate


@pytest.fixture
def sqlite_store(home: Path) -> Any:
    settings = load_settings()
    init_store(settings)
    store = open_store(settings)
    try:
        yield settings, store
    finally:
        store.close()


def _add(store: Store, name: str) -> None:
    store.add_credential(
        NewCredential(name=name), Secret(random_token()), VersionMeta(token_type="SYSTEM_USER")
    )


def test_a_deleted_database_file_refuses_work_and_is_logged_once(
    sqlite_store: tuple[Settings, Store], caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting the file under a running process: every transaction refuses (503), the file is
    never created again empty, and the problem is logged once however often it is met."""
    settings, store = sqlite_store
    _add(store, "acme/one")
    path = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    path.unlink()
    caplog.set_level(logging.ERROR, logger="permatoken.store.engine")
    assert "was deleted" in (store.unavailable() or "")
    for attempt in (lambda: _add(store, "acme/two"), lambda: store.reveal("acme/one")):
        with pytest.raises(StoreUnavailableError, match="was deleted") as info:
            attempt()
        assert info.value.reason == "gone"  # type: ignore[attr-defined]
        assert status_for(info.value) == 503
        assert "permatoken serve" in (info.value.hint or "")
    assert store.unavailable() is not None
    assert not path.exists(), "the database file came back empty"
    logged = [r for r in caplog.records if "was deleted" in r.getMessage()]
    assert len(logged) == 1


def test_a_replaced_database_file_is_noticed(sqlite_store: tuple[Settings, Store]) -> None:
    """A file moved over the path (another database, a restored copy) is not the one opened."""
    settings, store = sqlite_store
    _add(store, "acme/one")
    path = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    copy = path.with_name("copy.db")
    shutil.copyfile(path, copy)
    os.replace(copy, path)
    assert "was replaced" in (store.unavailable() or "")
    with pytest.raises(StoreUnavailableError, match="was replaced"):
        _add(store, "acme/two")


def test_a_locked_database_is_unavailable_not_an_internal_error(tmp_path: Path) -> None:
    """SQLite's "database is locked" (a long transaction elsewhere) is a 503 with a hint."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("CREATE TABLE t (x)")
    finally:
        other.close()
        holder.rollback()
        holder.close()
    error = translate(info.value, f"sqlite:///{path}")
    assert isinstance(error, StoreUnavailableError)
    assert error.reason == "locked" and str(path) in error.message  # type: ignore[attr-defined]
    assert status_for(error) == 503


def test_a_read_only_database_refuses_writes_with_503(
    sqlite_store: tuple[Settings, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database SQLite may only read (a read-only mount) answers writes with a 503 error that
    says so, and still serves reads."""
    settings, store = sqlite_store
    _add(store, "acme/one")
    path = settings.resolved_database_url.removeprefix("sqlite:///")
    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    ro = open_store(load_settings())
    try:
        assert ro.reveal("acme/one").reveal()
        with pytest.raises(StoreUnavailableError, match="read-only") as info:
            _add(ro, "acme/two")
        assert info.value.reason == "read_only"  # type: ignore[attr-defined]
        assert status_for(info.value) == 503
    finally:
        ro.close()
    assert [s.credential.name for s in store.list_status()] == ["acme/one"]
