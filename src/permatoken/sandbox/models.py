"""Plain records of the imitated world: apps, businesses, system users, WABAs, numbers, tokens.

The token record is the one of reference section 8; ``to_fixture`` gives the JSON shape that
``--fixtures-out``, the control API and :class:`SandboxState` methods all return.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

TOKEN_KINDS = (
    "dashboard",
    "user_short",
    "user_long",
    "system_user",
    "system_user_60d",
    "bisu",
    "app",
)
USER_KINDS = frozenset({"dashboard", "user_short", "user_long"})
SYSTEM_KINDS = frozenset({"system_user", "system_user_60d", "bisu"})

WHATSAPP_SCOPES = ["whatsapp_business_management", "whatsapp_business_messaging"]
KNOWN_SCOPES = frozenset(
    {
        *WHATSAPP_SCOPES,
        "business_management",
        "whatsapp_business_manage_events",
        "public_profile",
        "email",
    }
)

_ALNUM = string.ascii_letters + string.digits


def new_token_value() -> str:
    """``EAA`` and 180 random alphanumerics: the shape of a real Meta token and of the scanner."""
    return "EAA" + "".join(secrets.choice(_ALNUM) for _ in range(180))


def new_id(digits: int = 15) -> str:
    """A Graph-style numeric id as a string, never starting with 0."""
    return str(secrets.choice("123456789")) + "".join(
        secrets.choice(string.digits) for _ in range(digits - 1)
    )


@dataclass
class App:
    id: str
    secret: str
    name: str
    require_app_secret: bool = False
    business_id: str | None = None

    def to_fixture(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "secret": self.secret,
            "name": self.name,
            "require_app_secret": self.require_app_secret,
        }


@dataclass
class Business:
    id: str
    name: str
    requires_expiring_tokens: bool = False

    def to_fixture(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "requires_expiring_tokens": self.requires_expiring_tokens,
        }


@dataclass
class SystemUser:
    id: str
    business_id: str
    name: str
    role: str = "ADMIN"
    #: App ids installed with ``POST /{system-user-id}/applications``.
    apps: set[str] = field(default_factory=set)

    def to_fixture(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "business_id": self.business_id,
            "name": self.name,
            "role": self.role,
        }


@dataclass
class Waba:
    id: str
    business_id: str
    name: str
    #: ``DISABLED_UPDATE``'s ``waba_ban_state`` (``DISABLE`` refuses sends with 368).
    ban_state: str | None = None
    #: Between ``ACCOUNT_OFFBOARDED`` and ``ACCOUNT_RECONNECTED`` its numbers cannot send.
    offboarded: bool = False

    def to_fixture(self) -> dict[str, Any]:
        return {"id": self.id, "business_id": self.business_id, "name": self.name}


@dataclass
class PhoneNumber:
    id: str
    waba_id: str
    display_phone_number: str
    verified_name: str = "Sandbox Shop"

    def to_fixture(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "waba_id": self.waba_id,
            "display_phone_number": self.display_phone_number,
        }


@dataclass
class Token:
    value: str
    kind: str
    app_id: str
    user_id: str
    issued_at: int
    expires_at: int  # 0 = never
    data_access_expires_at: int  # 0 for system users and apps
    scopes: list[str]
    waba_ids: list[str]
    business_id: str | None = None
    system_user_id: str | None = None
    revoked: bool = False
    invalid_subcode: int | None = None

    @property
    def debug_type(self) -> str:
        if self.kind in USER_KINDS:
            return "USER"
        if self.kind in SYSTEM_KINDS:
            return "SYSTEM_USER"
        return "APP"

    def is_expired(self, now: float) -> bool:
        return self.expires_at != 0 and now >= self.expires_at

    def granular_scopes(self) -> list[dict[str, Any]]:
        # Embedded Signup tokens list the WABAs they reach; system-user tokens reach all (S10/S24).
        # A business token that lost its last WABA lists none rather than claiming all.
        result: list[dict[str, Any]] = []
        for scope in self.scopes:
            entry: dict[str, Any] = {"scope": scope}
            listed = self.waba_ids or self.kind == "bisu"
            if self.kind in USER_KINDS | {"bisu"} and scope in WHATSAPP_SCOPES and listed:
                entry["target_ids"] = list(self.waba_ids)
            result.append(entry)
        return result

    def to_fixture(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "type": self.debug_type,
            "kind": self.kind,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "app_id": self.app_id,
            "user_id": self.user_id,
            "system_user_id": self.system_user_id,
            "business_id": self.business_id,
            "scopes": list(self.scopes),
            "waba_ids": list(self.waba_ids),
            "revoked": self.revoked,
        }


@dataclass
class AuthCode:
    """An Embedded Signup code: single use, 30-second lifetime (reference 3.4)."""

    value: str
    app_id: str
    business_id: str
    created_at: float
    redirect_uri: str | None = None
    used: bool = False
