"""Where the client put its key, and the request without it (no I/O).

Graph clients send their access token in one of four places: ``Authorization: Bearer`` (or
``OAuth``), the ``access_token`` query parameter, an ``access_token`` form field (urlencoded or
multipart) or a field of a JSON body. The proxy accepts its API key in any of them, exactly once:
a key in two places is refused, so no request can carry one value for permatoken to check and
another for Meta to use. ``appsecret_proof`` and ``appsecret_time`` are taken out wherever they
are (the client computed them over its key; the proxy signs the real token itself).

Everything that is not an auth parameter is kept byte for byte: query pairs in their original
encoding and order, bodies untouched unless they held an auth field.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from . import multipart
from .errors import Refusal, refuse

TOKEN = "access_token"  # noqa: S105 - a parameter name
PROOF = "appsecret_proof"
PROOF_TIME = "appsecret_time"
AUTH_PARAMS = (TOKEN, PROOF, PROOF_TIME)
_SCHEMES = ("bearer", "oauth")


@dataclass
class Found:
    """Auth values found so far: where each key was, and whether a timed proof was asked for."""

    keys: list[tuple[str, str]] = field(default_factory=list)
    timed: bool = False

    def add(self, place: str, values: dict[str, list[str]]) -> None:
        for value in values.get(TOKEN, ()):
            self.keys.append((place, value))
        if values.get(PROOF_TIME):
            self.timed = True

    def key(self) -> str:
        """The one key, or a refusal (none, or more than one place)."""
        if not self.keys:
            raise refuse(
                Refusal.MISSING_KEY,
                "no access token: give the library a permatoken API key as its access token "
                "(Authorization: Bearer pt_…, or the access_token parameter)",
            )
        if len(self.keys) > 1:
            places = ", ".join(place for place, _ in self.keys)
            raise refuse(
                Refusal.DUPLICATE_KEY,
                f"the access token was sent {len(self.keys)} times ({places}): send it once",
            )
        return self.keys[0][1]


def from_headers(values: list[bytes], found: Found) -> None:
    """``Authorization`` header values (any scheme counts: a Basic header is a bad key, not none)."""
    for raw in values:
        text = raw.decode("latin-1").strip()
        scheme, _, rest = text.partition(" ")
        value = rest.strip() if scheme.lower() in _SCHEMES else text
        found.keys.append(("Authorization header", value))


def split_pairs(raw: bytes) -> tuple[bytes, dict[str, list[str]]]:
    """``a=1&access_token=…&b=2`` → (``a=1&b=2``, the auth values); other pairs untouched."""
    if not raw:
        return raw, {}
    kept: list[bytes] = []
    found: dict[str, list[str]] = {}
    for pair in raw.split(b"&"):
        name = unquote_plus(pair.partition(b"=")[0].decode("latin-1"))
        if name in AUTH_PARAMS:
            value = unquote_plus(pair.partition(b"=")[2].decode("utf-8", "replace"))
            found.setdefault(name, []).append(value)
        elif pair:
            kept.append(pair)
    return b"&".join(kept), found


def from_query(query: bytes, found: Found) -> bytes:
    kept, values = split_pairs(query)
    found.add("access_token query parameter", values)
    return kept


def from_body(body: bytes, content_type: str, found: Found) -> bytes:
    """A complete (buffered) body without its auth fields."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        kept, values = split_pairs(body)
        found.add("access_token form field", values)
        return kept if values else body
    boundary = multipart.boundary_of(content_type)
    if boundary is not None:
        return from_form_prefix(body, boundary, found)
    if kind == "application/json" or kind.endswith("+json"):
        return _from_json(body, found)
    return body


def from_form_prefix(body: bytes, boundary: bytes, found: Found) -> bytes:
    """A multipart body (or its buffered beginning) without its complete auth parts."""
    kept, values = multipart.strip_fields(body, boundary, AUTH_PARAMS)
    found.add("access_token multipart field", values)
    return kept if values else body


def _from_json(body: bytes, found: Found) -> bytes:
    # Only bodies that may hold an auth field are parsed (a \\u escape could spell one).
    if b"access_token" not in body and b"appsecret" not in body and b"\\u" not in body:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body  # not JSON after all: Meta will say so
    if not isinstance(data, dict) or not any(k in data for k in AUTH_PARAMS):
        return body
    values = {k: [str(data.pop(k))] for k in AUTH_PARAMS if k in data}
    found.add("access_token JSON field", values)
    return json.dumps(data, separators=(",", ":")).encode()


def redact_target(target: str) -> str:
    """A request target for a log line: auth parameter values in its query replaced."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    pairs = []
    for pair in query.split("&"):
        name = unquote_plus(pair.partition("=")[0])
        pairs.append(f"{pair.partition('=')[0]}=[redacted]" if name in AUTH_PARAMS else pair)
    return path + "?" + "&".join(pairs)


class AccessLogRedaction(logging.Filter):
    """For uvicorn's access log (``serve --access-log``): a key sent as ``?access_token=`` (the
    FB SDKs do) must not be written with the request line."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


__all__ = [
    "AUTH_PARAMS",
    "PROOF",
    "PROOF_TIME",
    "TOKEN",
    "AccessLogRedaction",
    "Found",
    "from_body",
    "from_form_prefix",
    "from_headers",
    "from_query",
    "redact_target",
    "split_pairs",
]
