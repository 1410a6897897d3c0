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
See docs/backup.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from .._exceptions import BackupError, BackupTamperedError, InputError
from ..timeutil import ensure_utc, isoformat, parse_datetime

MAGIC = b"PTBACKUP"
FORMAT_VERSION = 1
TAG_BYTES = 32
_PREFIX = struct.Struct(">8sHI")
_MAX_HEADER = 1 << 20
_MAX_LINE = 64 << 20
_CHUNK = 1 << 16
_VERIFY_HINT = "run `permatoken backup verify FILE` on another copy; restore from a good backup"


# --- header -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacSpec:
    """How one tag's key is found: ``kek`` (a random key wrapped by a KEK) or ``passphrase``."""

    kind: str
    kek_id: str | None = None
    wrapped_key: bytes | None = None

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
                hint=_VERIFY_HINT,
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


def _codecs(
    columns: Sequence[tuple[str, str]], table: dict[str, Codec | None]
) -> list[Codec | None]:
    return [table.get(tag) for _, tag in columns]


def _apply(codecs: Sequence[Codec | None], row: Sequence[Any]) -> list[Any]:
    return [v if c is None else c(v) for c, v in zip(codecs, row, strict=True)]


# --- writing ------------------------------------------------------------------------------


class BackupWriter:
    """Streams a backup into ``out``: header, then tables row by row, then the tags."""

    def __init__(self, out: BinaryIO, header: Header, mac_keys: Sequence[bytes]) -> None:
        if len(mac_keys) != len(header.macs):
            raise ValueError("one MAC key per header MAC spec")
        self._out = out
        self._macs = [hmac.new(k, digestmod=hashlib.sha256) for k in mac_keys]
        self._sha = hashlib.sha256()
        self.size = 0
        self._z = zlib.compressobj(3)
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._table: str | None = None
        self._codecs: list[Codec | None] = []
        self._rows = 0
        self.counts: dict[str, int] = {}
        raw = header.to_bytes()
        self._emit(_PREFIX.pack(MAGIC, header.format, len(raw)) + raw)

    def _emit(self, data: bytes, *, mac: bool = True) -> None:
        if not data:
            return
        if mac:
            for m in self._macs:
                m.update(data)
        self._sha.update(data)
        self._out.write(data)
        self.size += len(data)

    def _line(self, obj: Any) -> None:
        line = json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
        self._pending.append(line)
        self._pending_len += len(line)
        if self._pending_len >= _CHUNK:
            self._drain()

    def _drain(self) -> None:
        self._emit(self._z.compress(b"".join(self._pending)))
        self._pending, self._pending_len = [], 0

    def begin_table(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self._table, self._rows = name, 0
        self._codecs = _codecs(columns, ENCODERS)
        self._line({"table": name, "columns": [list(c) for c in columns]})

    def row(self, values: Sequence[Any]) -> None:
        self._line(_apply(self._codecs, values))
        self._rows += 1

    def end_table(self) -> None:
        assert self._table is not None
        self.counts[self._table] = self._rows
        self._line({"end": self._table, "rows": self._rows})
        self._table = None

    def close(self) -> str:
        """Finish the body and append the tags; returns the SHA-256 (hex) of the whole file."""
        self._line({"complete": True, "tables": self.counts})
        self._drain()
        self._emit(self._z.flush())
        for i, m in enumerate(self._macs):
            tag = m.digest()
            self._emit(tag, mac=False)
            for later in self._macs[i + 1 :]:
                later.update(tag)
        return self._sha.hexdigest()


# --- reading ------------------------------------------------------------------------------


def read_header(f: BinaryIO, size: int) -> tuple[Header, bytes]:
    """The header and the raw bytes before the body (refuses what is not a permatoken backup)."""
    prefix = f.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size or prefix[:8] != MAGIC:
        raise BackupError(
            "not a permatoken backup (the file does not start with PTBACKUP)",
            hint="give a file written by `permatoken backup --out FILE`",
        )
    _, version, length = _PREFIX.unpack(prefix)
    if version != FORMAT_VERSION:
        raise BackupError(
            f"backup format version {version} is not supported by this permatoken "
            f"(it reads version {FORMAT_VERSION})",
            hint="upgrade permatoken (`pip install -U permatoken`), or use the version that wrote it",
            format_version=version,
        )
    if length > _MAX_HEADER or _PREFIX.size + length > size:
        raise BackupTamperedError(
            "the backup is truncated or damaged (its header length is impossible)",
            hint=_VERIFY_HINT,
        )
    raw = f.read(length)
    header = Header.from_bytes(raw)
    if not header.macs or _PREFIX.size + length + TAG_BYTES * len(header.macs) > size:
        raise BackupTamperedError(
            "the backup is truncated or damaged (no room for its MAC)", hint=_VERIFY_HINT
        )
    return header, prefix + raw


@dataclass
class BackupReader:
    """Reads a backup's body, checking its tags with whichever keys are given.

    ``keys`` maps positions in ``header.macs`` to keys; every given tag must match, and at least
    one must be given. :meth:`check` only checks the tags; :meth:`records` decodes the body and
    checks the tags when it reaches the end (the caller must consume it fully before trusting
    what it read, which :func:`permatoken.backup.restore` does before committing).
    """

    f: BinaryIO
    size: int
    header: Header
    head: bytes
    keys: dict[int, bytes]
    counts: dict[str, int] = field(default_factory=dict)

    def _chunks(self) -> Iterator[bytes]:
        if not self.keys:
            raise BackupError("no key to check the backup's MAC with")
        macs = {i: hmac.new(k, self.head, hashlib.sha256) for i, k in self.keys.items()}
        self.f.seek(len(self.head))
        left = self.size - len(self.head) - TAG_BYTES * len(self.header.macs)
        while left > 0:
            chunk = self.f.read(min(_CHUNK, left))
            if not chunk:
                raise BackupTamperedError("the backup is truncated", hint=_VERIFY_HINT)
            for m in macs.values():
                m.update(chunk)
            left -= len(chunk)
            yield chunk
        n = len(self.header.macs)
        tags = self.f.read(TAG_BYTES * n + 1)
        if len(tags) != TAG_BYTES * n:
            raise BackupTamperedError("the backup is truncated or extended", hint=_VERIFY_HINT)
        for i in range(n):
            tag = tags[i * TAG_BYTES : (i + 1) * TAG_BYTES]
            if i in macs and not hmac.compare_digest(macs[i].digest(), tag):
                kind = self.header.macs[i].kind
                raise BackupTamperedError(
                    f"the backup's MAC does not match ({kind} key): the file was changed, "
                    "truncated, or not written with these keys",
                    hint=_VERIFY_HINT,
                    mac=kind,
                )
            for j, later in macs.items():
                if j > i:
                    later.update(tag)

    def check(self) -> None:
        for _ in self._chunks():
            pass

    def records(self) -> Iterator[tuple[str, list[tuple[str, str]], Iterator[list[Any]]]]:
        """``(table, columns, rows)`` per table, rows decoded; consume each ``rows`` in turn."""
        lines = self._lines()
        while True:
            head = next(lines, None)
            if not isinstance(head, dict):
                raise _damaged("a table or the end marker was expected")
            if head.get("complete") is True:
                if head.get("tables") != self.counts:
                    raise _damaged("the end marker does not match the tables read")
                if next(lines, None) is not None:
                    raise _damaged("data follows the end marker")
                return
            name, columns = head.get("table"), head.get("columns")
            if not isinstance(name, str) or not isinstance(columns, list):
                raise _damaged("a table header was expected")
            cols = [(str(c[0]), str(c[1])) for c in columns]
            if any(tag not in KNOWN_TAGS for _, tag in cols):
                raise _damaged(f"table {name} has a column type this version does not know")
            rows = self._rows(lines, name, cols)
            yield name, cols, rows
            for _ in rows:  # the caller stopped early: skip to the next table
                pass

    def _rows(
        self, lines: Iterator[Any], name: str, cols: list[tuple[str, str]]
    ) -> Iterator[list[Any]]:
        codecs = _codecs(cols, DECODERS)
        n = 0
        for item in lines:
            if isinstance(item, list):
                if len(item) != len(cols):
                    raise _damaged(f"a row of {name} has {len(item)} values, not {len(cols)}")
                n += 1
                yield _apply(codecs, item)
                continue
            if isinstance(item, dict) and item.get("end") == name and item.get("rows") == n:
                self.counts[name] = n
                return
            raise _damaged(f"table {name} does not end where its row count says")
        raise _damaged(f"table {name} has no end marker")

    def _lines(self) -> Iterator[Any]:
        """Decoded JSON lines; memory stays bounded by the longest line."""
        z = zlib.decompressobj()
        buf = b""
        try:
            for chunk in self._chunks():
                data = chunk
                while data:
                    buf += z.decompress(data, 4 * _CHUNK)
                    data = z.unconsumed_tail
                    *complete, buf = buf.split(b"\n")
                    if len(buf) > _MAX_LINE:
                        raise _damaged("a line is longer than any permatoken writes")
                    for line in complete:
                        yield json.loads(line)
            if not z.eof or z.unused_data or buf or z.flush():
                raise _damaged("the compressed body does not end where the file does")
        except (zlib.error, ValueError) as exc:
            raise _damaged(f"the body cannot be decoded ({type(exc).__name__})") from exc


def _damaged(what: str) -> BackupTamperedError:
    return BackupTamperedError(f"the backup's body is damaged: {what}", hint=_VERIFY_HINT)


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "TAG_BYTES",
    "BackupReader",
    "BackupWriter",
    "Header",
    "MacSpec",
    "PassphraseSpec",
    "read_header",
]
