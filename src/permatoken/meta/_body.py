"""Tolerant decoding of Graph response bodies: JSON, JSONP, HTML pages, garbage.

Private to :mod:`permatoken.meta`; the classifier and the response parsers share it so that a
body Meta wraps oddly is understood the same way everywhere.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from .._secret import redact

_JSONP: Final = re.compile(r"^(?:/\*\*/)?\s*[\w$.\[\]]+\s*\((.*)\)\s*;?\s*$", re.S)
_TITLE: Final = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_MAX_FALLBACK: Final = 200


class _DuplicateKey(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"access_token": "a", "access_token": "b"} has no single meaning: json.loads would keep
    # the last one silently, another parser the first.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _loads(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except _DuplicateKey:
        return _AMBIGUOUS
    except (ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON: Final = object()
_AMBIGUOUS: Final = object()


def decode_body(body: bytes | str | Mapping[str, Any] | None) -> tuple[Any, str | None]:
    """Return ``(payload, fallback_message)``.

    ``payload`` is the decoded JSON value (``None`` when there is none); ``fallback_message``
    describes a body that is not JSON (an HTML page's title, the first line of text), redacted.
    """
    if body is None:
        return None, None
    if isinstance(body, Mapping):
        return dict(body), None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
    text = text.lstrip("\ufeff").strip()
    if not text:
        return None, None
    payload = _loads(text)
    if payload is _NOT_JSON:
        match = _JSONP.match(text)
        payload = _loads(match.group(1)) if match else _NOT_JSON
    if payload is _AMBIGUOUS:
        return None, "ambiguous JSON: an object repeats a key"
    if payload is not _NOT_JSON:
        return payload, None
    title = _TITLE.search(text)
    if title:
        words = " ".join(html.unescape(title.group(1)).split())
        return None, redact(f"non-JSON error page: {words}")[:_MAX_FALLBACK]
    if text.startswith("<"):
        return None, "non-JSON error page"
    first = text.splitlines()[0]
    return None, redact(f"non-JSON body: {first}")[:_MAX_FALLBACK]


def _with_error_data(error: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(error)
    data = result.get("error_data")
    if isinstance(data, str):
        decoded = _loads(data)
        if isinstance(decoded, dict):
            result["error_data"] = decoded
    return result


def as_error_object(payload: Any) -> dict[str, Any] | None:
    """Find the error object in a decoded body, whichever of Meta's shapes it has."""
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    if isinstance(error, Mapping):
        return _with_error_data(error)
    if isinstance(error, str):  # OAuth2-style {"error": "...", "error_description": "..."}
        description = payload.get("error_description")
        return {"message": description if isinstance(description, str) else error}
    data = payload.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        return _with_error_data(data["error"])
    if "error_code" in payload:  # the old REST API: {"error_code": 1, "error_msg": "..."}
        return {"code": payload["error_code"], "message": payload.get("error_msg")}
    if "code" in payload or "error_subcode" in payload or "subcode" in payload:
        return _with_error_data(payload)
    return None
