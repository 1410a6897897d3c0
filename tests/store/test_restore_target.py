"""The store a backup is restored into: refused when it holds data, discarded without a trace
when the restore fails (the file and key decisions are tested in tests/backup/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import random_token
from permatoken._exceptions import StoreNotEmptyError
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings
from permatoken.store import Store
from permatoken.store.restore_target import RestoreTarget


def test_a_sqlite_file_the_restore_created_is_removed_when_it_is_discarded(tmp_path: Path) -> None:
    """A failed restore into a new SQLite file leaves no file (nor journal) behind."""
    path = tmp_path / "new.db"
    target = RestoreTarget(f"sqlite:///{path}")
    target.refuse_data()  # opens the database: the file now exists
    assert path.exists()
    Path(f"{path}-wal").write_bytes(b"")
    target.discard()
    assert not path.exists() and not Path(f"{path}-wal").exists()


def test_a_sqlite_file_that_was_there_before_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(b"")
    target = RestoreTarget(f"sqlite:///{path}")
    target.refuse_data()
    target.discard()
    assert path.exists()


def test_a_target_holding_data_is_refused_and_kept(settings: Settings, store: Store) -> None:
    """Restore only fills an empty store; the refusal names the tables and changes nothing."""
    store.add_credential(NewCredential(name="acme/wa"), Secret(random_token()), VersionMeta())
    target = RestoreTarget(settings.resolved_database_url)
    with pytest.raises(StoreNotEmptyError, match="credentials") as caught:
        target.refuse_data()
    target.discard()
    assert "restore only fills an empty store" in caught.value.message
    assert store.get("acme/wa").name == "acme/wa"


def test_the_target_is_described_without_its_password() -> None:
    target = RestoreTarget("postgresql+psycopg://pt:hunter2@db.example:5432/permatoken")
    try:
        assert "hunter2" not in target.description
        assert "db.example" in target.description
    finally:
        target.close()
