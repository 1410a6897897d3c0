"""Reading an import file: CSV (with a header) or JSON Lines, one checked row at a time.

Pure apart from reading the file. Every problem with a row becomes a refused
:class:`RowResult` naming the line and the reason (never the token); a problem with the file
itself (missing, a directory, other users can read it, not UTF-8, no row, no name/token
columns) is an ``InputError`` with a hint, raised by :func:`check_file` before anything is stored
(the columns when the first row is read).
"""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .._exceptions import InputError
from .._secret import Secret
from ..models import ISSUERS, tenant_of, token_value_problem, validate_name
from ..timeutil import parse_datetime

COLUMNS = (
    "name",
    "token",
    "expires_at",
    "issuer",
    "app_id",
    "waba_id",
    "phone_number_id",
    "business_id",
)
_NEVER = {"never", "0", "none"}


@dataclass(frozen=True)
class RowResult:
    line: int
    name: str | None
    outcome: str  # created, unchanged, refused
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "name": self.name,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Row:
    line: int
    name: str
    token: Secret = field(repr=False)
    expires_at: datetime | None
    never_expires: bool
    issuer: str
    app_id: str | None
    waba_ids: tuple[str, ...]
    phone_number_id: str | None
    business_id: str | None


# --- the file --------------------------------------------------------------------------------


#: What every refusal of the file itself ends with: where the format is described.
FORMAT_HINT = "`permatoken import --help` shows the format (CSV with a header, or JSON Lines)"


def check_file(path: Path) -> None:
    """Refuse, before anything is stored, a file that cannot be imported as a whole: missing,
    not a regular file, readable by others, not UTF-8 text (anywhere in it), or with no row."""
    check_private(path)
    try:
        with path.open("r", encoding="utf-8", newline="") as handle:
            has_row = _has_row(handle, path)
            while handle.read(1 << 20):
                pass  # the rest decoded too: a bad byte late in the file would stop mid-import
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (a byte that is not UTF-8 near offset {exc.start})",
            hint="save it as UTF-8 (most editors and spreadsheets offer 'CSV UTF-8'); "
            + FORMAT_HINT,
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", hint=_PATH_HINT) from None
    if not has_row:
        raise InputError(
            f"{path} has no row to import (it is empty or holds only a header)",
            hint="add one line per token, under a header line such as name,token,expires_at; "
            + FORMAT_HINT,
        )


def _has_row(handle: io.TextIOBase, path: Path) -> bool:
    """Whether the file holds a data line: a non-blank line (JSON Lines) or one after the header."""
    head = handle.read(4096)
    handle.seek(0)
    if path.suffix.lower() in (".jsonl", ".ndjson") or head.lstrip().startswith("{"):
        return any(line.strip() for line in handle)
    seen_header = False
    for line in handle:
        if line.strip().strip(","):
            if seen_header:
                return True
            seen_header = True
    return False


_PATH_HINT = "check the path; " + FORMAT_HINT


def check_private(path: Path) -> None:
    """Refuse a file other users can read or write: it holds tokens."""
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", hint=_PATH_HINT) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path} is a directory, not an import file", hint=_PATH_HINT)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path} is not a regular file", hint=_PATH_HINT)
    if st.st_mode & 0o077:
        raise InputError(
            f"{path} can be read or written by other users (mode {stat.S_IMODE(st.st_mode):o}) "
            "and it holds tokens; nothing was imported",
            hint=f"`chmod 600 {path}`, then run the import again",
        )


def read_rows(path: Path, *, tenant: str | None = None) -> Iterator[Row | RowResult]:
    """Each data row of ``path`` checked: a :class:`Row`, or a refused :class:`RowResult`."""
    try:
        handle = path.open("r", encoding="utf-8", newline="")
        head = handle.read(4096)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} as UTF-8 text: {type(exc).__name__}") from None
    handle.seek(0)
    with handle:
        jsonl = path.suffix.lower() in (".jsonl", ".ndjson") or head.lstrip().startswith("{")
        source = _jsonl(handle) if jsonl else _csv(handle, path)
        try:
            for line, record in source:
                yield _check(line, record, tenant)
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text") from None


def _csv(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.reader(handle)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"{path}: the header is not CSV ({exc})") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or "name" not in header or "token" not in header:
        raise InputError(
            f"{path}: the header must name the columns name and token"
            + (f"; unknown column(s): {', '.join(u[:30] for u in unknown)}" if unknown else ""),
            hint=f"columns: {', '.join(COLUMNS)}",
        )
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"not a CSV row ({exc})"
            continue
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield reader.line_num, f"{len(values)} fields where the header has {len(header)}"
            continue
        yield reader.line_num, dict(zip(header, values, strict=True))


def _jsonl(handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            yield number, "not a JSON object"
            continue
        if not isinstance(value, dict):
            yield number, "not a JSON object"
            continue
        unknown = [k for k in value if k not in COLUMNS]
        if unknown:
            yield number, f"unknown field(s): {', '.join(str(u)[:30] for u in unknown)}"
            continue
        yield number, value


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not text")
    return value.strip() or None


def _id(record: dict[str, Any], key: str) -> str | None:
    value = _text(record, key)
    if value is not None and not (len(value) <= 64 and value.isascii() and value.isalnum()):
        raise ValueError(f"{key} must be letters or digits (at most 64)")
    return value


def _check(line: int, record: dict[str, Any] | str, tenant: str | None) -> Row | RowResult:
    if isinstance(record, str):
        return RowResult(line, None, "refused", record)
    raw_name = record.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else None
    try:
        if not name:
            raise ValueError("no name")
        if tenant is not None and "/" not in name:
            name = f"{tenant}/{name}"
        validate_name(name)
        if tenant is not None and tenant_of(name) != tenant:
            raise ValueError(f"not in tenant {tenant} (--tenant)")
        token = record.get("token")
        if not isinstance(token, str):
            raise ValueError("no token")
        problem = token_value_problem(token.strip())
        if problem is not None:
            raise ValueError(f"the token is {problem}")
        when = _text(record, "expires_at")
        never = when is not None and when.lower() in _NEVER
        expires = None if when is None or never else parse_datetime(when)
        issuer = _text(record, "issuer") or "manual"
        if issuer not in ISSUERS:
            raise ValueError(f"unknown issuer {issuer[:40]!r} (one of: {', '.join(ISSUERS)})")
        waba = _text(record, "waba_id")
        wabas = tuple(w for w in (waba or "").replace(";", " ").split() if w)
        for w in wabas:
            if not (len(w) <= 64 and w.isascii() and w.isalnum()):
                raise ValueError("waba_id must be letters or digits (several: separated by ;)")
        return Row(
            line,
            name,
            Secret(token.strip()),
            expires,
            never,
            issuer,
            _id(record, "app_id"),
            wabas,
            _id(record, "phone_number_id"),
            _id(record, "business_id"),
        )
    except (ValueError, InputError) as exc:
        reason = exc.message if isinstance(exc, InputError) else str(exc)
        return RowResult(line, name[:200] if name else None, "refused", reason)


__all__ = ["COLUMNS", "FORMAT_HINT", "Row", "RowResult", "check_file", "check_private", "read_rows"]
