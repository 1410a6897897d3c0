"""Who may do what: API-key format, roles, grants. Pure functions, no I/O.

Roles::

    admin     everything, including API-key management
    operator  manage credentials and apps, report failures; never sees token values
    reader    status, events, audit, metrics; never sees token values
    app       read tokens, wait for changes and report failures of the credentials it is granted

Grants are credential-name patterns matched segment by segment (``/`` separates segments):
``*`` matches within one segment, a final ``**`` matches one or more further segments. So
``acme/*`` matches ``acme/messaging`` but neither ``acme/eu/messaging`` nor ``acmecorp/x``;
``acme/**`` matches everything under ``acme/``. A key without grants reaches every credential,
except an ``app`` key, which reaches none (app keys are created with at least one grant).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

from ._exceptions import InputError
from ._secret import Secret

KEY_PREFIX = "pt_"
_KEY_RE = re.compile(r"pt_[A-Za-z0-9_-]{43}")
_GRANT_SEGMENT = re.compile(r"[a-z0-9._*?\[\]-]{1,63}|\*\*")


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    READER = "reader"
    APP = "app"


class Action(StrEnum):
    READ_TOKEN = "read_token"  # noqa: S105 - an action name: token values, long-poll, stream
    REPORT = "report"  # report a failed token
    VIEW = "view"  # status, events, audit, apps
    MANAGE = "manage"  # create/update/delete/rotate/revoke/inspect, apps
    KEYS = "keys"  # API-key management
    METRICS = "metrics"


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.OPERATOR: frozenset({Action.REPORT, Action.VIEW, Action.MANAGE, Action.METRICS}),
    Role.READER: frozenset({Action.VIEW, Action.METRICS}),
    Role.APP: frozenset({Action.READ_TOKEN, Action.REPORT}),
}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key's metadata (the key itself is never stored)."""

    id: str
    role: Role
    grants: tuple[str, ...]
    key_hash: str
    prefix: str
    label: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "role": self.role.value,
            "grants": list(self.grants),
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z")
            if self.expires_at
            else None,
            "revoked_at": self.revoked_at.isoformat().replace("+00:00", "Z")
            if self.revoked_at
            else None,
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a request."""

    key_id: str
    role: Role
    grants: tuple[str, ...]
    #: When the key stops working (open long-polls and streams end then).
    expires_at: datetime | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def may(self, action: Action, name: str | None = None) -> bool:
        if action not in ALLOWED[self.role]:
            return False
        return name is None or covers(self.role, self.grants, name)

    def sees(self, name: str) -> bool:
        """Whether ``name`` is within this key's grants (for filtering lists)."""
        return covers(self.role, self.grants, name)

    def contains(self, grants: tuple[str, ...]) -> bool:
        """Whether a key with ``grants`` would reach nothing this key cannot (keys it may manage)."""
        if not self.grants:
            return True
        return bool(grants) and all(
            any(grant_within(g, mine) for mine in self.grants) for g in grants
        )


# --- keys -----------------------------------------------------------------------------------


def new_key() -> Secret:
    """``pt_`` and 43 base64url characters: 256 bits from the OS's CSPRNG."""
    entropy = secrets.token_bytes(32)  # pragma: no mutate (token_bytes(None) is 32 bytes too)
    # No base64 of 32 bytes ends in "X": rstrip(b"XX=XX") would be an equivalent mutant.
    raw = base64.urlsafe_b64encode(entropy).rstrip(b"=").decode()  # pragma: no mutate
    return Secret(KEY_PREFIX + raw)


def new_key_id() -> str:
    return "k" + secrets.token_hex(6)


def looks_like_key(value: str) -> bool:
    return bool(_KEY_RE.fullmatch(value))


def hash_key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --- grants ---------------------------------------------------------------------------------


def validate_grant(pattern: str) -> str:
    parts = pattern.split("/")
    # An empty pattern has one empty segment, which the segment rule already refuses.
    if len(pattern) > 200 or not all(_GRANT_SEGMENT.fullmatch(p) for p in parts):
        raise InputError(
            f"invalid grant {pattern[:60]!r}: use name segments with * or ?, "
            "e.g. acme/* or acme/**",
        )
    if "**" in parts[:-1]:
        raise InputError(f"invalid grant {pattern[:60]!r}: ** is only allowed as the last segment")
    return pattern


def grant_matches(pattern: str, name: str) -> bool:
    """Segment-wise glob: ``acme/*`` never matches ``acmecorp/x`` or ``acme/eu/x``."""
    pat = pattern.split("/")
    parts = name.split("/")
    if pat[-1] == "**":
        head = pat[:-1]
        if len(parts) <= len(head):
            return False
        parts = parts[: len(head)]
        pat = head
    elif len(pat) != len(parts):
        return False
    pairs = zip(pat, parts, strict=True)  # pragma: no mutate (lengths are equal by now)
    return all(fnmatchcase(p, q) for q, p in pairs)


def grant_within(inner: str, outer: str) -> bool:
    """Whether every name ``inner`` matches is matched by ``outer`` too.

    Conservative: a glob segment in ``inner`` is only within an identical segment or ``*``, so
    the answer may be no where a cleverer comparison would say yes, never the reverse.
    """
    ip, op = inner.split("/"), outer.split("/")
    if op[-1] == "**":
        head = op[:-1]
        # inner needs a segment beyond outer's head (its last one, a name part or **): only
        # the segments before it are compared.
        if len(ip) <= len(head):
            return False
        pairs = zip(ip, head, strict=False)  # pragma: no mutate (ip is the longer: no strict)
        return all(_segment_within(i, o) for i, o in pairs)
    if ip[-1] == "**" or len(ip) != len(op):
        return False
    same = zip(ip, op, strict=True)  # pragma: no mutate (lengths are equal by now)
    return all(_segment_within(i, o) for i, o in same)


def _segment_within(inner: str, outer: str) -> bool:
    if inner == outer or outer == "*":
        return True
    return not any(c in inner for c in "*?[") and fnmatchcase(inner, outer)


def covers(role: Role, grants: tuple[str, ...], name: str) -> bool:
    if not grants:
        return role is not Role.APP
    return any(grant_matches(g, name) for g in grants)


_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """``90d``, ``12h``, ``30m``, ``2w`` or plain seconds, as seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = _DURATION.fullmatch(text)
    if not m:
        raise InputError(f"invalid duration {text[:20]!r}: use e.g. 90d, 12h, 30m or 2w")
    return int(m.group(1)) * _UNIT[m.group(2)]


__all__ = [
    "ALLOWED",
    "KEY_PREFIX",
    "Action",
    "ApiKey",
    "Principal",
    "Role",
    "covers",
    "grant_matches",
    "grant_within",
    "hash_key",
    "looks_like_key",
    "new_key",
    "new_key_id",
    "parse_duration",
    "same_hash",
    "validate_grant",
]
