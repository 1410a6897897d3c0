"""Schema migrations: `init` creates and upgrades; commands refuse a schema they do not know."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from permatoken._exceptions import SchemaError
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings, load_settings
from permatoken.store import engine as store_engine
from permatoken.store import open_store
from permatoken.store.schema import metadata

HEAD = store_engine.head_revision()


def _revision(url: str) -> str | None:
    engine = store_engine.create_engine(url)
    try:
        return store_engine.current_revision(engine)
    finally:
        engine.dispose()


def test_init_creates_the_head_schema_and_is_idempotent(
    store_url: str, cli: Any, raw_db: Any
) -> None:
    """`init` on an empty database creates every table at the head revision; again is a no-op."""
    first = cli("--database-url", store_url, "init")
    assert first.rc == 0, first.stderr
    assert f"(schema {HEAD})" in first.stdout and "created" in first.stdout
    assert _revision(store_url) == HEAD
    with raw_db(store_url) as conn:
        insp = sa.inspect(conn)
        assert set(metadata.tables) <= set(insp.get_table_names())
        indexes = {ix["name"]: ix for ix in insp.get_indexes("versions")}
        assert indexes["uq_versions_one_current"]["unique"]
        assert indexes["uq_versions_one_pending"]["unique"]
    again = cli("--database-url", store_url, "init")
    assert again.rc == 0 and "up to date" in again.stdout


def _all_table_definitions() -> None:
    """Import every ``permatoken.store.schema*`` module: each adds its tables to ``metadata``."""
    import importlib
    import pkgutil

    import permatoken.store as store_pkg

    for info in pkgutil.iter_modules(store_pkg.__path__):
        if info.name.startswith("schema"):
            importlib.import_module(f"permatoken.store.{info.name}")


def test_migrations_match_the_table_definitions(store_url: str) -> None:
    """The migrated schema is exactly what the schema modules describe (no drift)."""
    _all_table_definitions()
    engine = store_engine.create_engine(store_url)
    try:
        store_engine.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
    finally:
        engine.dispose()
    assert diff == []


def test_an_uninitialised_store_is_refused(
    store_url: str, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv("PERMATOKEN_DATABASE_URL", store_url)
    home.mkdir()
    with pytest.raises(SchemaError, match="not initialised") as info:
        open_store(load_settings())
    assert "permatoken init" in (info.value.hint or "")


def _set_revision(url: str, raw_db: Any, sql: str) -> None:
    with raw_db(url) as conn:
        conn.execute(sa.text(sql))


def test_a_newer_schema_is_refused_by_every_command(
    settings: Settings, run_cli: Any, cli: Any, raw_db: Any
) -> None:
    """A store stamped by a newer permatoken (revision 9999) is refused with exit code 5."""
    url = settings.resolved_database_url
    _set_revision(url, raw_db, "UPDATE alembic_version SET version_num = '9999'")
    results = [run_cli("status", "--json"), cli("init"), cli("get", "acme/x")]
    for r in results:
        assert r.rc == 5, r.stderr
        assert "schema (9999) is newer than this permatoken knows" in r.stderr
        assert "hint: upgrade permatoken" in r.stderr
    assert _revision(url) == "9999"  # init did not touch it


def test_tables_without_a_schema_version_are_refused(
    settings: Settings, run_cli: Any, cli: Any, raw_db: Any, db_rows: Any
) -> None:
    """Permatoken tables but no alembic_version: refused (not re-created, not misread)."""
    url = settings.resolved_database_url
    st = open_store(settings)
    try:
        st.add_credential(NewCredential(name="acme/m"), Secret("zqValueOne111"), VersionMeta())
    finally:
        st.close()
    _set_revision(url, raw_db, "DELETE FROM alembic_version")
    before = db_rows(url)
    for r in (run_cli("status"), cli("init")):
        assert r.rc == 5, r.stderr
        assert "permatoken tables" in r.stderr and "no schema version" in r.stderr
        assert "hint:" in r.stderr
    assert db_rows(url) == before


FAKE_NEXT = '''"""test-only migration: an index on events.kind

Revision ID: t9001
Revises: {head}
"""
from alembic import op

revision = "t9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_kind_test", "events", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_events_kind_test", "events")
'''


def test_an_older_schema_is_refused_then_upgraded_by_init(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw_db: Any
) -> None:
    """Given a newer migration, commands refuse the old store until `init` upgrades it."""
    st = open_store(settings)
    try:
        st.add_credential(NewCredential(name="acme/m"), Secret("zqValueOne111"), VersionMeta())
    finally:
        st.close()
    newer = tmp_path / "migrations"
    shutil.copytree(store_engine._MIGRATIONS, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / "t9001_test.py").write_text(FAKE_NEXT.format(head=HEAD))
    monkeypatch.setattr(store_engine, "_MIGRATIONS", newer)
    assert store_engine.head_revision() == "t9001"

    with pytest.raises(
        SchemaError, match=f"schema is at {HEAD}, this permatoken needs t9001"
    ) as info:
        open_store(settings)
    assert "permatoken init" in (info.value.hint or "")
    refused = cli("status", "--json")
    assert refused.rc == 5 and "needs t9001" in refused.stderr and "hint:" in refused.stderr

    upgraded = cli("init")
    assert upgraded.rc == 0, upgraded.stderr
    assert "upgraded" in upgraded.stdout and f"from schema {HEAD} to t9001" in upgraded.stdout
    assert _revision(settings.resolved_database_url) == "t9001"
    with raw_db(settings.resolved_database_url) as conn:
        assert "ix_events_kind_test" in {
            ix["name"] for ix in sa.inspect(conn).get_indexes("events")
        }
    st = open_store(settings)
    try:
        assert st.reveal("acme/m").reveal() == "zqValueOne111"
    finally:
        st.close()
