"""The backup file format, version 1. Pure: bytes in, bytes out; no database, no keys.

::

    offset  size  content
    0       8     magic  b"PTBACKUP"
    8       2     format version, big-endian (1)
    10      4     header length H, big-endian
    14      H     header: UTF-8 JSON (created_at, schema revision, KEK ids, MAC and passphrase specs)
    14+H    …     body: one zlib stream of JSON Lines (below)
    end-32n 32n   n HMAC-SHA256 tags, one per entry of header["macs"], in that order

Each tag covers every byte before it (magic, version, header, body and the earlier tags), so
any change, truncation or extension is detected before anything is decoded, and the last tag
(the ``kek`` one) covers the whole file: whoever holds the keys checks every byte. Body lines, in order::

    {"table": "credentials", "columns": [["id", "integer"], ["name", "string"], ...]}
    [1, "acme/messaging", ...]                 one JSON array per row
    {"end": "credentials", "rows": 1}
    ...                                        every table, parents before children
    {"complete": true, "tables": {"credentials": 1, ...}}

Values are JSON except ``bytes`` (base64) and ``datetime`` (ISO 8601 UTC, microseconds).
Writing and reading the body: :mod:`.stream`. See docs/backup.md.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from .._exceptions import BackupError, BackupTamperedError, InputError
from ..timeutil import ensure_utc, isoformat, parse_datetime

MAGIC = b"PTBACKUP"
FORMAT_VERSION = 1
TAG_BYTES = 32
PREFIX = struct.Struct(">8sHI")
MAX_HEADER = 1 << 20
MAX_LINE = 64 << 20
CHUNK = 1 << 16
VERIFY_HINT = "run `permatoken backup verify FILE` on another copy; restore from a good backup"


# --- header -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacSpec:
    """How one tag's key is found: ``kek`` (a random key wrapped by a KEK) or ``passphrase``."""

    kind: str
    kek_id: str | None = None
    wrapped_key: bytes | None = None

    def __post_init__(self) -> None:
        # A header changed in transit must be refused as tampered, never half-read: a ``kek``
        # spec without its KEK id or wrapped key (or an unknown kind) is not a spec at all.
        if self.kind == "kek":
            if not isinstance(self.kek_id, str) or not self.wrapped_key:
                raise ValueError("a kek MAC spec needs a KEK id and a wrapped key")
        elif self.kind != "passphrase":
            raise ValueError(f"unknown MAC spec kind {self.kind!r}")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "kek":
            data |= {"kek_id": self.kek_id, "wrapped_key": _b64(self.wrapped_key or b"")}
        return data


@dataclass(frozen=True, slots=True)
class PassphraseSpec:
    """Argon2id parameters and the key-encryption keys sealed under the passphrase."""

    salt: bytes
    iterations: int
    lanes: int
    memory_kib: int
    sealed_keks: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "kdf": "argon2id",
            "salt": _b64(self.salt),
            "iterations": self.iterations,
            "lanes": self.lanes,
            "memory_kib": self.memory_kib,
            "sealed_keks": _b64(self.sealed_keks),
        }


@dataclass(frozen=True, slots=True)
class Header:
    created_at: datetime
    schema_revision: str
    source_dialect: str
    permatoken_version: str
    kek_ids: tuple[str, ...]
    active_kek_id: str
    macs: tuple[MacSpec, ...]
    passphrase: PassphraseSpec | None = None
    format: int = FORMAT_VERSION

    def to_bytes(self) -> bytes:
        data = {
            "format": self.format,
            "created_at": isoformat(self.created_at),
            "schema_revision": self.schema_revision,
            "source_dialect": self.source_dialect,
            "permatoken_version": self.permatoken_version,
            "kek_ids": list(self.kek_ids),
            "active_kek_id": self.active_kek_id,
            "macs": [m.to_json() for m in self.macs],
            "passphrase": self.passphrase.to_json() if self.passphrase else None,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            d = json.loads(raw)
            pp = d.get("passphrase")
            return cls(
                created_at=parse_datetime(d["created_at"]),
                schema_revision=str(d["schema_revision"]),
                source_dialect=str(d["source_dialect"]),
                permatoken_version=str(d["permatoken_version"]),
                kek_ids=tuple(str(k) for k in d["kek_ids"]),
                active_kek_id=str(d["active_kek_id"]),
                macs=tuple(
                    MacSpec(
                        m["kind"],
                        m.get("kek_id"),
                        _unb64(m["wrapped_key"]) if "wrapped_key" in m else None,
                    )
                    for m in d["macs"]
                ),
                passphrase=PassphraseSpec(
                    _unb64(pp["salt"]),
                    int(pp["iterations"]),
                    int(pp["lanes"]),
                    int(pp["memory_kib"]),
                    _unb64(pp["sealed_keks"]),
                )
                if pp
                else None,
                format=int(d["format"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
            raise BackupTamperedError(
                "the backup's header is damaged (it is not valid JSON of the expected shape)",
                hint=VERIFY_HINT,
            ) from exc


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- values -------------------------------------------------------------------------------

Codec = Callable[[Any], Any]


def _enc_datetime(v: Any) -> Any:
    if v is None:
        return None
    if v.tzinfo is not UTC:  # the store gives aware UTC values: convert only what is not
        v = ensure_utc(v)
    return v.isoformat(timespec="microseconds")


def _dec_datetime(v: Any) -> Any:
    return None if v is None else datetime.fromisoformat(v)


def _enc_bytes(v: Any) -> Any:
    return None if v is None else _b64(bytes(v))


def _dec_bytes(v: Any) -> Any:
    return None if v is None else _unb64(v)


ENCODERS: dict[str, Codec | None] = {"datetime": _enc_datetime, "bytes": _enc_bytes}
DECODERS: dict[str, Codec | None] = {"datetime": _dec_datetime, "bytes": _dec_bytes}
KNOWN_TAGS = frozenset({"integer", "float", "boolean", "string", "json", "datetime", "bytes"})


def codecs_for(
    columns: Sequence[tuple[str, str]], table: dict[str, Codec | None]
) -> list[Codec | None]:
    return [table.get(tag) for _, tag in columns]


def apply_codecs(codecs: Sequence[Codec | None], row: Sequence[Any]) -> list[Any]:
    return [v if c is None else c(v) for c, v in zip(codecs, row, strict=True)]


# --- reading the header ---------------------------------------------------------------


def read_header(f: BinaryIO, size: int) -> tuple[Header, bytes]:
    """The header and the raw bytes before the body (refuses what is not a permatoken backup)."""
    prefix = f.read(PREFIX.size)
    if len(prefix) < PREFIX.size or prefix[:8] != MAGIC:
        raise BackupError(
            "not a permatoken backup (the file does not start with PTBACKUP)",
            hint="give a file written by `permatoken backup --out FILE`",
        )
    _, version, length = PREFIX.unpack(prefix)
    if version != FORMAT_VERSION:
        raise BackupError(
            f"backup format version {version} is not supported by this permatoken "
            f"(it reads version {FORMAT_VERSION})",
            hint="upgrade permatoken (`pip install -U permatoken`), or use the version that wrote it",
            format_version=version,
        )
    if length > MAX_HEADER or PREFIX.size + length > size:
        raise BackupTamperedError(
            "the backup is truncated or damaged (its header length is impossible)",
            hint=VERIFY_HINT,
        )
    raw = f.read(length)
    header = Header.from_bytes(raw)
    if not header.macs or PREFIX.size + length + TAG_BYTES * len(header.macs) > size:
        raise BackupTamperedError(
            "the backup is truncated or damaged (no room for its MAC)", hint=VERIFY_HINT
        )
    return header, prefix + raw


def damaged(what: str) -> BackupTamperedError:
    return BackupTamperedError(f"the backup's body is damaged: {what}", hint=VERIFY_HINT)


__all__ = [
    "DECODERS",
    "ENCODERS",
    "FORMAT_VERSION",
    "KNOWN_TAGS",
    "MAGIC",
    "TAG_BYTES",
    "Header",
    "MacSpec",
    "PassphraseSpec",
    "apply_codecs",
    "codecs_for",
    "damaged",
    "read_header",
]
