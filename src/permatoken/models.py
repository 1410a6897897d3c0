"""Plain domain records: credentials, token versions, events. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ._exceptions import InputError, InvalidNameError
from ._secret import Secret


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


ISSUERS = (
    "manual",
    "meta-system-refresh",
    "meta-system-mint",
    "meta-user-exchange",
    "oauth2-refresh",
    "login",
)

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


def validate_token_value(raw: str, *, what: str = "token") -> Secret:
    """Check a token value read from stdin, a file or the environment.

    One trailing newline (as ``echo`` and files add) is removed; anything else that is not
    printable ASCII is refused, since no real token contains it and it would break headers.
    """
    if raw.endswith("\r\n"):
        raw = raw[:-2]
    elif raw.endswith("\n"):
        raw = raw[:-1]
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
        raise InputError(
            f"{what} is longer than {MAX_TOKEN_BYTES} bytes", hint="check you read the right file"
        )
    if not raw:
        raise InputError(
            f"{what} is empty", hint="pipe the value on stdin, or use --token-file / --from-env"
        )
    if not raw.strip():
        raise InputError(f"{what} is only whitespace")
    for ch in raw:
        if ord(ch) > 0x7E:
            raise InputError(f"{what} contains non-ASCII characters; tokens are printable ASCII")
        if ord(ch) < 0x21:
            raise InputError(f"{what} contains whitespace or control characters (position hidden)")
    return Secret(raw)


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
