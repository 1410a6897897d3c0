"""``multipart/form-data`` bodies as Graph reads them: fields as parameters, files aside.

Media uploads (``POST /{phone-number-id}/media``) and clients that send every parameter as a
form field (``curl -F``, the PHP SDK) use this encoding. Files are summarised (name, type, size,
SHA-256), not kept.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_BOUNDARY = re.compile(r"""boundary=(?:"([^"]{1,200})"|([^;\s"]{1,200}))""", re.I)
_PARAM = re.compile(r"""(?:^|;)\s*(name|filename)=(?:"([^"]*)"|([^;\s]+))""", re.I)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str | None
    size: int
    sha256: str


def parse_form(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """(text fields, files) of a multipart body; raises ValueError if it is not one."""
    m = _BOUNDARY.search(content_type)
    if m is None:
        raise ValueError("multipart body without a boundary")
    delimiter = b"\r\n--" + (m.group(1) or m.group(2)).encode("latin-1")
    data = b"\r\n" + body
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    start = data.find(delimiter)
    if start < 0:
        raise ValueError("multipart body without its boundary")
    while True:
        head_start = start + len(delimiter)
        if data[head_start : head_start + 2] == b"--":
            return fields, files
        end = data.find(delimiter, head_start)
        head_end = data.find(b"\r\n\r\n", head_start)
        if end < 0 or head_end < 0 or head_end > end:
            raise ValueError("multipart body cut short")
        headers = _headers(data[head_start:head_end])
        params = {
            k.lower(): v1 or v2
            for k, v1, v2 in _PARAM.findall(headers.get("content-disposition", ""))
        }
        name, content = params.get("name"), data[head_end + 4 : end]
        if name is not None:
            if "filename" in params:
                files[name] = UploadedFile(
                    params["filename"],
                    headers.get("content-type"),
                    len(content),
                    hashlib.sha256(content).hexdigest(),
                )
            else:
                fields[name] = content.decode("utf-8", "replace")
        start = end


def _headers(block: bytes) -> dict[str, str]:
    out = {}
    for line in block.decode("latin-1").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out
