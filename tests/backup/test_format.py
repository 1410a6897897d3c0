"""The backup file: every table is in it, and any change to any byte is refused."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from permatoken._exceptions import BackupError, BackupTamperedError, WrongPassphraseError
from permatoken._secret import Secret
from permatoken.backup import create_backup, verify_backup
from permatoken.backup.format import KNOWN_TAGS, MAGIC, TAG_BYTES, read_header
from permatoken.backup.stream import BackupReader
from permatoken.settings import Settings
from permatoken.store.schema import metadata
from permatoken.store.snapshot import layouts, sealed_columns

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _records(path: Path, store: Any) -> dict[str, list[list[Any]]]:
    """Every row of a backup, by table (after its MAC is checked)."""
    from permatoken.backup.verify import opened, unlock

    out: dict[str, list[list[Any]]] = {}
    with opened(path) as (f, size, header, head):
        _, keys, _ = unlock(header, keyring=lambda: store.keyring, passphrase=None)
        for name, _cols, rows in BackupReader(f, size, header, head, keys).records():
            out[name] = list(rows)
    return out


def test_every_table_of_the_metadata_is_in_the_backup(
    store: Any, seeded: list[str], tmp_path: Path
) -> None:
    """All tables the migrations create, parents first, each with every row it holds."""
    out = tmp_path / "b.ptbackup"
    result = create_backup(store, out)
    records = _records(out, store)
    assert set(records) == set(metadata.tables)
    assert list(records) == [t.name for t in metadata.sorted_tables]
    with store.read() as conn:
        for name, table in metadata.tables.items():
            n = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            assert len(records[name]) == n == result.counts[name], name
            assert n > 0, f"the seeded world leaves {name} empty: the round trips miss it"


@sqlite_only
def test_a_table_added_later_is_backed_up_without_a_change(store: Any, tmp_path: Path) -> None:
    """The snapshot follows the metadata: a new table (and its rows) appears in the backup."""
    extra = sa.Table(
        "zz_later_feature",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.Text),
    )
    try:
        with store.write() as conn:
            extra.create(conn)
            conn.execute(extra.insert(), [{"id": 1, "note": "a"}, {"id": 2, "note": "b"}])
        out = tmp_path / "b.ptbackup"
        create_backup(store, out)
        assert _records(out, store)["zz_later_feature"] == [[1, "a"], [2, "b"]]
    finally:
        metadata.remove(extra)


def test_every_column_has_a_type_the_format_carries() -> None:
    for layout in layouts():
        assert {tag for _, tag in layout.columns} <= KNOWN_TAGS, layout.name


def test_every_table_with_sealed_values_is_opened_by_verify() -> None:
    """A table with a KEK id column holds sealed values: verify must know how to open them."""
    registry = sealed_columns()
    for table in metadata.tables.values():
        if any(c.name.endswith("kek_id") for c in table.columns):
            assert table.name in registry, f"verify does not open the sealed values of {table.name}"
            spec = registry[table.name]
            assert {spec.ciphertext, spec.wrapped_key, spec.kek_id} <= set(table.c.keys())


# --- any change is refused ----------------------------------------------------------------


def _landmarks(data: bytes, header_len: int) -> list[int]:
    """Header fields, the header, the body's edges and middle, each MAC, the last byte."""
    body = 14 + header_len
    mac = len(data) - 2 * TAG_BYTES
    fixed = [0, 7, 8, 9, 10, 13, 14, 14 + header_len // 2, body - 1, body, body + 1]
    return [*fixed, (body + mac) // 2, mac - 1, mac, mac + TAG_BYTES, len(data) - 1]


@sqlite_only
def test_a_flipped_byte_anywhere_is_refused(
    store: Any, seeded: list[str], tmp_path: Path, settings: Settings
) -> None:
    """Header, body, MACs, last byte: each flip is refused with the keys and with the passphrase."""
    good = tmp_path / "good.ptbackup"
    words = Secret("a long enough passphrase")
    create_backup(store, good, passphrase=words)
    data = good.read_bytes()
    header_len = struct.unpack(">I", data[10:14])[0]
    verify_backup(good, keyring=lambda: store.keyring)  # the untouched file passes
    bad = tmp_path / "bad.ptbackup"
    landmarks = _landmarks(data, header_len)
    landmarks.append(data.index(b'"created_at":"') + 16)  # a date that no longer parses
    spread = [round(i * (len(data) - 1) / 59) for i in range(60)]
    for pos in sorted(set(landmarks + spread)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01 if pos != landmarks[-1] else 0x40
        bad.write_bytes(bytes(flipped))
        # Argon2id takes ~0.4 s: the passphrase path is tried at the landmarks only.
        ways: list[dict[str, Any]] = [{"keyring": lambda: store.keyring}]
        if pos in landmarks:
            ways.append({"passphrase": words})
        for kwargs in ways:
            with pytest.raises(BackupError) as info:
                verify_backup(bad, keyring=kwargs.get("keyring", _no_keys), **_pp(kwargs))
            if 14 <= pos:
                # Past the fixed prefix a flip is always called what it is (or, inside the
                # sealed keys, a passphrase that no longer opens them).
                assert isinstance(info.value, BackupTamperedError | WrongPassphraseError), (
                    pos,
                    info.value,
                )


def _pp(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"passphrase": kwargs["passphrase"]} if "passphrase" in kwargs else {}


def _no_keys() -> Any:
    raise AssertionError("a passphrase verify must not need the store's keys")


@sqlite_only
def test_a_truncated_or_extended_file_is_refused(
    store: Any, seeded: list[str], tmp_path: Path
) -> None:
    good = tmp_path / "good.ptbackup"
    create_backup(store, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.ptbackup"
    for length in (0, 5, 13, 14, 100, len(data) // 2, len(data) - TAG_BYTES, len(data) - 1):
        bad.write_bytes(data[:length])
        with pytest.raises(BackupError):
            verify_backup(bad, keyring=lambda: store.keyring)
    for extra in (b"\0", b"more data"):
        bad.write_bytes(data + extra)
        with pytest.raises(BackupTamperedError):
            verify_backup(bad, keyring=lambda: store.keyring)


@sqlite_only
def test_other_files_and_other_versions_are_named_as_such(
    store: Any, seeded: list[str], tmp_path: Path
) -> None:
    good = tmp_path / "good.ptbackup"
    create_backup(store, good)
    data = good.read_bytes()
    other = tmp_path / "other"
    other.write_bytes(b"SQLite format 3\0" + data[16:])
    with pytest.raises(BackupError, match="not a permatoken backup"):
        verify_backup(other, keyring=lambda: store.keyring)
    newer = tmp_path / "newer.ptbackup"
    newer.write_bytes(MAGIC + struct.pack(">H", 2) + data[10:])
    with pytest.raises(BackupError, match="format version 2 is not supported") as info:
        verify_backup(newer, keyring=lambda: store.keyring)
    assert "upgrade permatoken" in (info.value.hint or "")
    with good.open("rb") as f:
        header, _ = read_header(f, len(data))
    assert header.format == 1 and header.schema_revision and header.kek_ids


@pytest.mark.parametrize(
    "mac",
    [
        {"kind": "kek", "kek_id": "kek-1"},  # the wrapped key's name changed in transit
        {"kind": "kek", "wrapped_key": "AAAA"},
        {"kind": "kez", "kek_id": "kek-1", "wrapped_key": "AAAA"},
    ],
)
def test_a_header_with_a_damaged_mac_spec_is_tampered_not_a_crash(mac: dict[str, str]) -> None:
    import json

    from permatoken.backup.format import Header

    good = {
        "format": 1,
        "created_at": "2026-11-30T00:00:00Z",
        "schema_revision": "x",
        "source_dialect": "sqlite",
        "permatoken_version": "0",
        "kek_ids": ["kek-1"],
        "active_kek_id": "kek-1",
        "macs": [mac],
        "passphrase": None,
    }
    with pytest.raises(BackupTamperedError):
        Header.from_bytes(json.dumps(good).encode())
