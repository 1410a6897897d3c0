"""Auth fields in ``multipart/form-data`` bodies: taken out of a buffer, watched for in a stream.

A form body is ``--B CRLF headers CRLF CRLF content`` parts separated by ``CRLF --B`` and closed by
``CRLF --B--``. Graph clients (the PHP SDK, ``curl -F access_token=…``) may send the token as a
form field. :func:`strip_fields` removes the complete parts with the given names from a body or
from the buffered beginning of one (the part still being received at its end is left alone), and
returns their values. :class:`Watcher` follows the rest of a streamed body, chunk by chunk, and
says when a part header naming one of those fields has arrived: the proxy then stops before the
chunk that holds it is forwarded, so the field's value never leaves.

Pure functions over bytes, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection

MAX_HEADERS = 16 * 1024
_BOUNDARY = re.compile(r"""boundary=(?:"([^"]{1,200})"|([^;\s"]{1,200}))""", re.I)
_NAME = re.compile(rb"""(?:^|;)\s*name=(?:"([^"]*)"|([^;\s]+))""", re.I)
_CRLF2 = b"\r\n\r\n"


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type, else None."""
    if not content_type.lower().lstrip().startswith("multipart/"):
        return None
    m = _BOUNDARY.search(content_type)
    if m is None:
        return None
    return (m.group(1) or m.group(2)).encode("latin-1")


def field_name(headers: bytes) -> str | None:
    """The ``name`` of a part's ``Content-Disposition`` header, if it has one."""
    for line in headers.split(b"\r\n"):
        head, sep, value = line.partition(b":")
        if sep and head.strip().lower() == b"content-disposition":
            m = _NAME.search(value)
            if m is not None:
                return (m.group(1) if m.group(1) is not None else m.group(2)).decode(
                    "utf-8", "replace"
                )
    return None


def strip_fields(
    body: bytes, boundary: bytes, names: Collection[str]
) -> tuple[bytes, dict[str, list[str]]]:
    """``body`` without its complete parts named in ``names``, and those parts' values."""
    delimiter = b"\r\n--" + boundary
    # A leading CRLF makes the first delimiter look like the others.
    data = b"\r\n" + body
    found: dict[str, list[str]] = {}
    keep: list[bytes] = []
    start = data.find(delimiter)
    if start < 0:
        return body, found
    keep.append(data[:start])
    while True:
        end = data.find(delimiter, start + len(delimiter))
        if end < 0:  # the last part (or the closing delimiter): kept as it is
            keep.append(data[start:])
            break
        part = data[start + len(delimiter) : end]
        head_end = part.find(_CRLF2)
        name = field_name(part[:head_end]) if head_end >= 0 else None
        if name is not None and name in names:
            found.setdefault(name, []).append(
                part[head_end + 4 :].decode("utf-8", "replace").strip()
            )
        else:
            keep.append(data[start:end])
        start = end
    return b"".join(keep)[2:], found


class Watcher:
    """Follows a streamed form body and reports the first part header naming a watched field."""

    def __init__(self, boundary: bytes, names: Collection[str]) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.names = frozenset(names)
        self._carry = b"\r\n"  # the stream's first delimiter has no CRLF before it

    def feed(self, chunk: bytes) -> str | None:
        """The watched field whose header is complete in what was fed so far, else None."""
        data = self._carry + chunk
        d = self.delimiter
        pos = 0
        while True:
            at = data.find(d, pos)
            if at < 0:
                break
            head_start = at + len(d)
            head_end = data.find(_CRLF2, head_start)
            if head_end < 0:
                if len(data) - head_start <= MAX_HEADERS:
                    self._carry = data[at:]  # the header is still arriving
                    return None
                pos = head_start  # not a part header: a lookalike in the content
                continue
            name = field_name(data[head_start:head_end])
            if name in self.names:
                return name
            pos = head_end + 4
        self._carry = data[max(pos, len(data) - len(d) + 1) :]
        return None


__all__ = ["Watcher", "boundary_of", "field_name", "strip_fields"]
