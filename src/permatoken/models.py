"""Plain domain records: credentials, token versions, events. No I/O here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ._exceptions import InputError, InvalidNameError
from ._secret import Secret
from .vocabulary import ISSUERS as ISSUERS
from .vocabulary import SECRET_NAMES as SECRET_NAMES
from .vocabulary import IssuerName as IssuerName
from .vocabulary import ReportStatus as ReportStatus
from .vocabulary import SecretName as SecretName


class VersionState(StrEnum):
    PENDING = "pending"
    CURRENT = "current"
    PREVIOUS = "previous"
    RETIRED = "retired"
    REVOKED = "revoked"


class Health(StrEnum):
    OK = "ok"
    EXPIRING = "expiring"
    RENEWING = "renewing"
    FAILING = "failing"
    NEEDS_HUMAN = "needs_human"
    EXPIRED = "expired"
    INVALID = "invalid"


# The closed sets of names every layer shares live in .vocabulary (dependency-free, so that
# references.py and the SDK can import them); they are re-exported here, where they were first read.

# --- names ------------------------------------------------------------------------------

NAME_GRAMMAR = (
    "1 to 4 segments separated by '/', each 1-63 characters of lowercase letters, digits, "
    "'.', '_' or '-', starting with a letter or digit (e.g. 'acme/messaging'); "
    "at most 200 characters in all, no '..'"
)
_SEGMENT = r"[a-z0-9][a-z0-9._-]{0,62}"
_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,3}}")


def validate_name(name: str) -> str:
    """Return ``name`` if it follows :data:`NAME_GRAMMAR`, else raise :class:`InvalidNameError`."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not isinstance(name, str) or len(name) > 200 or ".." in name or not _NAME_RE.fullmatch(name):
        raise InvalidNameError(
            f"invalid credential name {shown!r}: a name is {NAME_GRAMMAR}",
            name=shown,
        )
    return name


def tenant_of(name: str) -> str:
    """The first segment of a multi-segment name; single-segment names belong to 'default'."""
    return name.split("/", 1)[0] if "/" in name else "default"


# --- token values -----------------------------------------------------------------------

MAX_TOKEN_BYTES = 8 * 1024


def token_value_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be a token (``None`` if it can). Never names a character or position:
    the value is a secret. Shared by what a human supplies and what an issuer returns."""
    if not isinstance(raw, str):
        return f"not a string ({type(raw).__name__})"
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
        return f"longer than {MAX_TOKEN_BYTES} bytes"
    if not raw:
        return "empty"
    if not raw.strip():
        return "only whitespace"
    if any(ord(ch) > 0x7E for ch in raw):
        return "contains non-ASCII characters; tokens are printable ASCII"
    if any(ord(ch) < 0x21 for ch in raw):
        return "contains whitespace or control characters (position hidden)"
    return None


def token_problem_sentence(what: str, problem: str) -> str:
    """``"the access_token is empty"``, ``"the token contains …"``."""
    verb = "" if problem.startswith("contains") else "is "
    return f"{what} {verb}{problem}"


def validate_token_value(raw: str, *, what: str = "token") -> Secret:
    """Check a token value read from stdin, a file or the environment.

    One trailing newline (as ``echo`` and files add) is removed; anything else that is not
    printable ASCII is refused, since no real token contains it and it would break headers.
    """
    if raw.endswith("\r\n"):
        raw = raw[:-2]
    elif raw.endswith("\n"):
        raw = raw[:-1]
    problem = token_value_problem(raw)
    if problem is not None:
        hints = {
            f"longer than {MAX_TOKEN_BYTES} bytes": "check you read the right file",
            "empty": "pipe the value on stdin, or use --token-file / --from-env",
        }
        raise InputError(token_problem_sentence(what, problem), hint=hints.get(problem))
    return Secret(raw)


# --- instants and lifetimes an upstream names --------------------------------------------

#: Any instant Meta or a token endpoint names lies in this window; outside it the value is
#: garbage (and year 1 or 9999 would overflow date arithmetic further on).
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)
#: The longest lifetime an ``expires_in`` may give (Meta's longest expiring token: ~60 days).
MAX_LIFETIME = timedelta(days=3650)


def _seconds(value: object, what: str) -> float:
    """A finite number of seconds from JSON (numbers, or digit strings as some servers send)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} is {json_kind(value)}, not a number")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?\d{1,20}(?:\.\d{1,9})?", text):
            raise ValueError(f"{what} is a string that is not a number")
        value = float(text)
    if not isinstance(value, int | float):
        raise ValueError(f"{what} is {json_kind(value)}, not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number")
    if abs(value) > 1e12:
        raise ValueError(f"{what} is out of range")
    return float(value)


def json_kind(value: object) -> str:
    """How a JSON value's type is named in error messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def instant_from_unix(value: object, what: str, *, zero_means_none: bool = True) -> datetime | None:
    """Unix seconds from upstream as an aware datetime; ``0`` (or absent) is ``None``.

    Raises ValueError (with a reason that never quotes the value) for anything that is not a
    plausible instant: negative, NaN, strings of words, booleans, before 2000 or after 2100.
    """
    if value is None:
        return None
    seconds = _seconds(value, what)
    if seconds == 0 and zero_means_none:
        return None
    if not EARLIEST_INSTANT.timestamp() <= seconds < LATEST_INSTANT.timestamp():
        raise ValueError(f"{what} is not a plausible instant (outside 2000-2100)")
    return datetime.fromtimestamp(seconds, UTC)


def expiry_from_lifetime(value: object, now: datetime, what: str = "expires_in") -> datetime | None:
    """``now + expires_in``; absent or ``0`` means no lifetime given (``None``).

    Raises ValueError for negative, non-finite, non-numeric or implausibly long lifetimes.
    """
    if value is None:
        return None
    seconds = _seconds(value, what)
    if seconds == 0:
        return None
    if seconds < 0:
        raise ValueError(f"{what} is negative")
    if seconds > MAX_LIFETIME.total_seconds():
        raise ValueError(f"{what} is longer than {MAX_LIFETIME.days} days")
    return now + timedelta(seconds=seconds)


def check_instant(value: datetime | None, what: str) -> datetime | None:
    """Refuse an already-parsed instant outside the plausible window (ValueError)."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST_INSTANT <= aware < LATEST_INSTANT:
        raise ValueError(f"{what} is not a plausible instant (outside 2000-2100)")
    return aware


# --- records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionMeta:
    """Non-secret facts about a token value (stored in the clear)."""

    token_type: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None  # None = never expires
    data_access_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    waba_ids: tuple[str, ...] = ()
    user_id: str | None = None
    is_valid: bool | None = None
    verdict: str | None = None
    inspected_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenVersion:
    credential_id: int
    version: int
    state: VersionState
    fingerprint: str
    kek_id: str
    meta: VersionMeta
    created_at: datetime
    state_changed_at: datetime


@dataclass(frozen=True, slots=True)
class Credential:
    id: int
    name: str
    tenant: str
    issuer: str
    purpose: str | None
    business_id: str | None
    waba_ids: tuple[str, ...]
    phone_number_id: str | None
    app_id: str | None
    health: Health
    health_reason: str | None
    options: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    current_version: int | None = None
    rotation_step: str | None = None
    next_due_at: datetime | None = None
    next_action: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CredentialStatus:
    """A credential joined with its current version, as `status` shows it."""

    credential: Credential
    current: TokenVersion | None

    def to_json(self, now: datetime, *, policy: Any = None) -> dict[str, Any]:
        """``policy``: the effective :class:`~permatoken.policy.Policy` (all layers); without
        it the defaults plus the credential's own overrides are shown."""
        from .policy import describe, resolve, summary
        from .references import upstream_status
        from .timeutil import isoformat

        cur = self.current
        expires = cur.meta.expires_at if cur else None
        return {
            "name": self.credential.name,
            "tenant": self.credential.tenant,
            "health": self.credential.health.value,
            "health_reason": self.credential.health_reason,
            "expires_at": isoformat(expires),
            "days_left": None
            if expires is None
            else round((expires - now).total_seconds() / 86400, 2),
            "version": cur.version if cur else None,
            "issuer": self.credential.issuer,
            "token_type": cur.meta.token_type if cur else None,
            "fingerprint": cur.fingerprint if cur else None,
            "purpose": self.credential.purpose,
            "waba_ids": list(self.credential.waba_ids),
            "phone_number_id": self.credential.phone_number_id,
            "app_id": self.credential.app_id,
            "rotation_step": self.credential.rotation_step,
            "next_action": self.credential.next_action,
            "next_due_at": isoformat(self.credential.next_due_at),
            "policy": _policy_json(self.credential.policy, policy, resolve, describe, summary),
            # Where the issuer sends stored secrets, and the last host change (null for Meta's).
            "upstream": upstream_status(self.credential),
        }


def _policy_json(
    layer: dict[str, Any], policy: Any, resolve: Any, describe: Any, summary: Any
) -> dict[str, Any]:
    try:
        effective = policy if policy is not None else resolve(layer)
    except InputError as exc:
        return {"error": exc.message, "overrides": layer}
    data: dict[str, Any] = describe(effective) | {"summary": summary(effective), "overrides": layer}
    return data


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    credential_name: str | None
    kind: str
    at: datetime
    actor: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class App:
    """A Meta app whose secret permatoken holds (encrypted) to call Meta on its behalf."""

    id: str
    name: str | None
    require_app_secret: bool
    kek_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewCredential:
    """What a caller supplies to create a credential (validated by the store)."""

    name: str
    issuer: str = "manual"
    purpose: str | None = None
    business_id: str | None = None
    waba_ids: tuple[str, ...] = ()
    phone_number_id: str | None = None
    app_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
