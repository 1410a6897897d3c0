"""Request and response bodies (pydantic): validation of what comes in, and the OpenAPI schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ..timeutil import ensure_utc
from ..vocabulary import IssuerName, SecretName

Name = Field(min_length=1, max_length=200, description="Credential name, e.g. acme/messaging.")
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
Word = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")]
OptionKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
#: A time in an answer: naive ones (as some databases hand them back) are UTC; all end in Z.
Utc = Annotated[datetime, AfterValidator(ensure_utc)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    # Answers may gain fields over time; clients must ignore what they do not know.
    model_config = ConfigDict(extra="allow")


# --- errors ---------------------------------------------------------------------------------
class ErrorBody(_Out):
    code: str = Field(description="Machine-readable error code.")
    message: str


class ErrorOut(_Out):
    error: ErrorBody


# --- tokens -----------------------------------------------------------------------------------
class TokenOut(_Out):
    name: str
    version: int
    token: str = Field(description="The current token value. Never logged.")
    expires_at: datetime | None = Field(description="ISO 8601 UTC; null for never-expiring tokens.")
    token_type: str | None
    fingerprint: str
    health: str = Field(description="The credential's health, as in `status` (e.g. `invalid`).")


class ReportIn(_In):
    name: str = Name
    version: int = Field(ge=1, le=2**31 - 1, description="The version that failed.")
    code: int | None = Field(
        default=None, ge=-(2**31), le=2**31 - 1, description="Graph error code, e.g. 190."
    )
    subcode: int | None = Field(
        default=None, ge=-(2**31), le=2**31 - 1, description="Graph error subcode, e.g. 463."
    )


class ReportOut(_Out):
    # The words of vocabulary.ReportStatus, spelled as a Literal so OpenAPI shows a plain string enum
    # (tests/client/test_statuses.py checks that they agree).
    status: Literal["renewed", "newer_exists", "still_valid", "needs_human", "failed", "busy"]
    version: int | None
    token: str | None = Field(
        default=None, description="Only for callers allowed to read the token."
    )
    expires_at: datetime | None = None
    message: str


# --- credentials ----------------------------------------------------------------------------
class CredentialStatusOut(_Out):
    name: str
    tenant: str
    health: str
    health_reason: str | None
    expires_at: datetime | None
    days_left: float | None
    version: int | None
    issuer: str
    token_type: str | None
    fingerprint: str | None
    purpose: str | None
    waba_ids: list[str]
    phone_number_id: str | None
    app_id: str | None
    rotation_step: str | None
    next_action: str | None
    next_due_at: datetime | None
    upstream: UpstreamOut | None = Field(
        default=None, description="Where the issuer sends stored secrets (non-Meta issuers)."
    )


class UpstreamOut(_Out):
    option: str = Field(description="The option holding the URL, e.g. token_url.")
    host: str | None
    previous_host: str | None = Field(description="The host before the last change, if any.")
    changed_at: datetime | None
    changed_by: str | None = Field(description="key:ID of the API key, or cli.")


class VersionOut(_Out):
    version: int
    state: str
    fingerprint: str
    token_type: str | None
    expires_at: Utc | None
    is_valid: bool | None
    verdict: str | None
    created_at: Utc
    state_changed_at: Utc


class CredentialDetailOut(CredentialStatusOut):
    versions: list[VersionOut]


class CredentialCreatedOut(CredentialStatusOut):
    verdict: str | None
    advice: str | None


class CredentialListOut(_Out):
    items: list[CredentialStatusOut]
    #: Counted for a first page (no ``after``) only.
    total: int | None
    limit: int
    offset: int
    #: The next page (``…?after=NAME&limit=N``), or null on the last one.
    next: str | None = None


#: The credential secrets an issuer may read (``vocabulary.SECRET_NAMES``).
Secrets = SecretName


class CredentialIn(_In):
    name: str = Name
    token: str | None = Field(
        default=None,
        min_length=1,
        max_length=8192,
        description="The token value; omit to let the issuer obtain the first value.",
    )
    issuer: IssuerName = "manual"
    purpose: Word | None = None
    business_id: Id | None = None
    waba_ids: list[Id] = Field(default_factory=list, max_length=50)
    phone_number_id: Id | None = None
    app_id: Id | None = None
    options: dict[OptionKey, str | int | bool] = Field(default_factory=dict, max_length=50)
    policy: dict[OptionKey, str | int | float | bool] = Field(default_factory=dict, max_length=50)
    secrets: dict[Secrets, str] = Field(
        default_factory=dict, description="Issuer secrets (refresh token, client secret, password)."
    )
    inspect: bool = Field(default=True, description="Ask Meta's debug_token (needs app_id).")
    expires_at: datetime | None = Field(
        default=None, description="Offline only: the token's expiry."
    )
    never_expires: bool = False
    token_type: str | None = Field(default=None, max_length=32)


class CredentialPatch(_In):
    issuer: IssuerName | None = None
    purpose: Word | None = None
    business_id: Id | None = None
    waba_ids: list[Id] | None = Field(default=None, max_length=50)
    phone_number_id: Id | None = None
    app_id: Id | None = None
    options: dict[OptionKey, str | int | bool] | None = Field(default=None, max_length=50)
    policy: dict[OptionKey, str | int | float | bool] | None = Field(default=None, max_length=50)


class RotateIn(_In):
    force: bool = False
    reason: str = Field(default="api", min_length=1, max_length=40, pattern=r"^[a-z0-9_.-]+$")


class RevokeIn(_In):
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Default: the current version."
    )


class InspectIn(_In):
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    canary: bool | None = None


class OutcomeOut(_Out):
    name: str
    status: str
    version: int | None
    previous_version: int | None
    expires_at: Utc | None
    message: str
    health: str | None


class InspectionOut(_Out):
    name: str
    version: int
    valid: bool
    verdict: str
    advice: str | None
    health: str
    token_type: str | None
    expires_at: Utc | None
    scopes: list[str]
    waba_ids: list[str]
    canary_ok: bool | None


# --- apps, events, audit, keys -------------------------------------------------------------
class AppIn(_In):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    secret: str | None = Field(
        default=None, min_length=1, max_length=512, description="Required for a new app."
    )
    name: str | None = Field(default=None, max_length=200)
    require_app_secret: bool | None = None


class AppOut(_Out):
    id: str
    name: str | None
    require_app_secret: bool
    kek_id: str
    created_at: Utc
    updated_at: Utc


class AppListOut(_Out):
    items: list[AppOut]


class EventOut(_Out):
    id: int
    name: str | None
    kind: str
    at: Utc
    actor: str
    detail: dict[str, Any]


class EventListOut(_Out):
    items: list[EventOut]


class AuditOut(_Out):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    source: str | None
    result: str
    detail: dict[str, Any]
    hash: str


class AuditListOut(_Out):
    items: list[AuditOut]


class KeyIn(_In):
    role: Literal["admin", "operator", "reader", "app"]
    grants: list[str] = Field(default_factory=list, max_length=50)
    expires_in: int | None = Field(
        default=None, ge=60, le=10 * 365 * 86400, description="Seconds until the key expires."
    )
    label: str | None = Field(default=None, max_length=120)


class KeyOut(_Out):
    id: str
    label: str | None
    role: str
    grants: list[str]
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyCreatedOut(KeyOut):
    key: str = Field(description="The API key. Shown once; only its hash is stored.")


class KeyListOut(_Out):
    items: list[KeyOut]


class HealthOut(_Out):
    status: str
    checks: dict[str, bool] = Field(default_factory=dict)


__all__ = [name for name in dir() if name.endswith(("In", "Out", "Patch"))]
