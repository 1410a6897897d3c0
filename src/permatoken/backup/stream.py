"""Streaming a backup's body: :class:`BackupWriter` writes the header, rows and MAC tags of the
format in :mod:`.format`; :class:`BackupReader` checks the tags and decodes the rows, in memory
bounded by the longest line whatever the number of rows."""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .._exceptions import BackupError, BackupTamperedError
from .format import (
    CHUNK,
    DECODERS,
    ENCODERS,
    KNOWN_TAGS,
    MAGIC,
    MAX_LINE,
    PREFIX,
    TAG_BYTES,
    VERIFY_HINT,
    Codec,
    Header,
    apply_codecs,
    codecs_for,
    damaged,
)


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
        self._row_codecs: list[Codec | None] = []
        self._rows = 0
        self.counts: dict[str, int] = {}
        raw = header.to_bytes()
        self._emit(PREFIX.pack(MAGIC, header.format, len(raw)) + raw)

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
        if self._pending_len >= CHUNK:
            self._drain()

    def _drain(self) -> None:
        self._emit(self._z.compress(b"".join(self._pending)))
        self._pending, self._pending_len = [], 0

    def begin_table(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self._table, self._rows = name, 0
        self._row_codecs = codecs_for(columns, ENCODERS)
        self._line({"table": name, "columns": [list(c) for c in columns]})

    def row(self, values: Sequence[Any]) -> None:
        self._line(apply_codecs(self._row_codecs, values))
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
            chunk = self.f.read(min(CHUNK, left))
            if not chunk:
                raise BackupTamperedError("the backup is truncated", hint=VERIFY_HINT)
            for m in macs.values():
                m.update(chunk)
            left -= len(chunk)
            yield chunk
        n = len(self.header.macs)
        tags = self.f.read(TAG_BYTES * n + 1)
        if len(tags) != TAG_BYTES * n:
            raise BackupTamperedError("the backup is truncated or extended", hint=VERIFY_HINT)
        for i in range(n):
            tag = tags[i * TAG_BYTES : (i + 1) * TAG_BYTES]
            if i in macs and not hmac.compare_digest(macs[i].digest(), tag):
                kind = self.header.macs[i].kind
                raise BackupTamperedError(
                    f"the backup's MAC does not match ({kind} key): the file was changed, "
                    "truncated, or not written with these keys",
                    hint=VERIFY_HINT,
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
                raise damaged("a table or the end marker was expected")
            if head.get("complete") is True:
                if head.get("tables") != self.counts:
                    raise damaged("the end marker does not match the tables read")
                if next(lines, None) is not None:
                    raise damaged("data follows the end marker")
                return
            name, columns = head.get("table"), head.get("columns")
            if not isinstance(name, str) or not isinstance(columns, list):
                raise damaged("a table header was expected")
            cols = [(str(c[0]), str(c[1])) for c in columns]
            if any(tag not in KNOWN_TAGS for _, tag in cols):
                raise damaged(f"table {name} has a column type this version does not know")
            rows = self._rows(lines, name, cols)
            yield name, cols, rows
            for _ in rows:  # the caller stopped early: skip to the next table
                pass

    def _rows(
        self, lines: Iterator[Any], name: str, cols: list[tuple[str, str]]
    ) -> Iterator[list[Any]]:
        codecs = codecs_for(cols, DECODERS)
        n = 0
        for item in lines:
            if isinstance(item, list):
                if len(item) != len(cols):
                    raise damaged(f"a row of {name} has {len(item)} values, not {len(cols)}")
                n += 1
                yield apply_codecs(codecs, item)
                continue
            if isinstance(item, dict) and item.get("end") == name and item.get("rows") == n:
                self.counts[name] = n
                return
            raise damaged(f"table {name} does not end where its row count says")
        raise damaged(f"table {name} has no end marker")

    def _lines(self) -> Iterator[Any]:
        """Decoded JSON lines; memory stays bounded by the longest line."""
        z = zlib.decompressobj()
        buf = b""
        try:
            for chunk in self._chunks():
                data = chunk
                while data:
                    buf += z.decompress(data, 4 * CHUNK)
                    data = z.unconsumed_tail
                    *complete, buf = buf.split(b"\n")
                    if len(buf) > MAX_LINE:
                        raise damaged("a line is longer than any permatoken writes")
                    for line in complete:
                        yield json.loads(line)
            if not z.eof or z.unused_data or buf or z.flush():
                raise damaged("the compressed body does not end where the file does")
        except (zlib.error, ValueError) as exc:
            raise damaged(f"the body cannot be decoded ({type(exc).__name__})") from exc


__all__ = ["BackupReader", "BackupWriter"]
