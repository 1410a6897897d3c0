"""Where a proxied request goes: the credential name and the Graph path, checked (no I/O).

The proxy's URL is ``/graph/{credential-name}/-/{graph-path}?{query}``. The ``/-/`` separates a
name of any depth from the Graph path (a name segment never is ``-``). Everything is read from
the raw request target, before any percent-decoding, so that what is checked is what would be
sent:

- the name must follow the credential-name grammar as written: a percent sign, upper case, ``..``
  or an empty segment is refused, never decoded into something else (``acme%2Fmessaging``);
- the Graph path may hold only the characters Graph paths use (letters, digits, ``_ . , ~ -``),
  no dot-only segment (``.``, ``..``), no empty segment (``//``), no percent-encoding (so no
  encoded slash or dot either) and nothing that reads as a scheme or a host (``https:``, ``@``);
- the upstream URL is the configured Graph URL followed by that path: the host never comes from
  the request, whatever its target, ``Host`` or ``X-Forwarded-*`` headers say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._exceptions import InvalidNameError
from ..models import validate_name
from .errors import Refusal, refuse

PREFIX = b"/graph/"
SEPARATOR = b"/-"
MAX_PATH = 2048
_SEGMENT = re.compile(rb"[A-Za-z0-9_.,~-]{1,256}")
_VERSION = re.compile(r"v\d{1,3}\.\d{1,2}")
_ID = re.compile(r"\d{1,32}")


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    #: The Graph path, ``/`` or ``/v25.0/123/messages`` (only safe characters, see above).
    path: str
    #: The raw query string, as the client sent it (auth parameters are taken out later).
    query: bytes

    @property
    def route(self) -> str:
        """For audit records and denials: which credential, never the Graph path or query."""
        return f"/graph/{self.name}/-"


def parse_target(raw_path: bytes, query: bytes) -> Target:
    """The credential name and the Graph path of ``/graph/{name}/-/{path}``, or a refusal."""
    if not raw_path.startswith(PREFIX):
        raise refuse(Refusal.BAD_PATH, "the proxy's URLs start with /graph/{credential-name}/-")
    rest = raw_path[len(PREFIX) :]
    cut = rest.find(SEPARATOR + b"/")
    if cut < 0 and rest.endswith(SEPARATOR):
        cut = len(rest) - len(SEPARATOR)
    if cut < 0:
        raise refuse(
            Refusal.BAD_PATH,
            "the URL must be /graph/{credential-name}/-/{graph-path}: "
            "end the base URL with /- (e.g. http://HOST:PORT/graph/acme/messaging/-)",
        )
    return Target(_name(rest[:cut]), graph_path(rest[cut + len(SEPARATOR) :]), query)


def _name(raw: bytes) -> str:
    if b"%" in raw:
        raise refuse(
            Refusal.BAD_PATH,
            "percent-encoded characters are not allowed in the credential name: "
            "write the name as it is (e.g. /graph/acme/messaging/-)",
        )
    try:
        return validate_name(raw.decode("ascii"))
    except (UnicodeDecodeError, InvalidNameError):
        shown = raw[:60].decode("ascii", "replace")
        raise refuse(
            Refusal.BAD_PATH,
            f"{shown!r} is not a credential name (lower-case segments of letters, digits, . _ -)",
        ) from None


def graph_path(raw: bytes) -> str:
    """``raw`` (what follows ``/-``) as a safe Graph path starting with ``/``, or a refusal."""
    if raw in (b"", b"/"):
        return "/"
    if len(raw) > MAX_PATH:
        raise refuse(Refusal.BAD_PATH, f"the Graph path is longer than {MAX_PATH} characters")
    if not raw.startswith(b"/"):
        raise refuse(Refusal.BAD_PATH, "the Graph path must follow /- after a slash")
    for segment in raw[1:].split(b"/"):
        if not segment:
            raise refuse(
                Refusal.BAD_PATH,
                "the Graph path has an empty segment (//): check that the base URL does not end "
                "with a slash",
            )
        if b"%" in segment:
            raise refuse(
                Refusal.BAD_PATH, "percent-encoded characters are not allowed in the Graph path"
            )
        if not _SEGMENT.fullmatch(segment) or not segment.strip(b"."):
            shown = segment[:40].decode("ascii", "replace")
            raise refuse(
                Refusal.BAD_PATH,
                f"the Graph path segment {shown!r} is not allowed (letters, digits, _ . , ~ - only; "
                "no . or .. segments, no scheme or host)",
            )
    return raw.decode("ascii")


def message_sender(method: str, path: str) -> str | None:
    """The phone-number id of a Cloud API send (``POST /{phone-number-id}/messages``), else None."""
    if method != "POST" or not path.endswith("/messages"):
        return None
    parts = path.strip("/").split("/")
    if parts and _VERSION.fullmatch(parts[0]):
        parts = parts[1:]
    if len(parts) == 2 and _ID.fullmatch(parts[0]):
        return parts[0]
    return None


__all__ = ["Target", "graph_path", "message_sender", "parse_target"]
