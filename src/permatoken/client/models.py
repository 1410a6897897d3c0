"""Plain, immutable values the SDK hands out: tokens, report answers, WhatsApp results."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._secret import Secret
from ..vocabulary import ReportStatus

__all__ = ["CachedToken", "PhoneNumberInfo", "ReportAnswer", "SentMessage"]


@dataclass(frozen=True, slots=True)
class CachedToken:
    """One version of a credential's token, as held in memory.

    Immutable: a token source swaps the whole object when a new version arrives, so a reader
    never sees a value from one version with the number of another.
    """

    name: str
    version: int
    value: Secret
    expires_at: datetime | None = None
    token_type: str | None = None
    #: The credential's health as the broker last said (``ok``, ``invalid``…; None if unknown).
    health: str | None = None

    @property
    def fingerprint(self) -> str:
        return self.value.fingerprint

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds left (negative once expired); None for a never-expiring token."""
        if self.expires_at is None:
            return None
        return self.expires_at.timestamp() - (time.time() if now is None else now)

    @property
    def expired(self) -> bool:
        left = self.expires_in()
        return left is not None and left <= 0


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """What became of a dead-token report.

    ``status``: a :class:`~permatoken.vocabulary.ReportStatus`: ``renewed`` (a new version was made
    for this report), ``newer_exists`` (someone else already rotated), ``still_valid`` (Meta says
    the token works), ``needs_human``, ``failed`` or ``busy``. ``token`` is the version to use
    next when the broker sent it.
    """

    status: ReportStatus
    version: int | None = None
    token: CachedToken | None = None
    message: str = ""

    @property
    def recovered(self) -> bool:
        return self.status in (ReportStatus.RENEWED, ReportStatus.NEWER_EXISTS)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """Meta accepted a message (``200`` means accepted, not delivered)."""

    id: str
    wa_id: str | None = None
    input: str | None = None
    message_status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class PhoneNumberInfo:
    """``GET /{phone-number-id}``: the business phone number's public facts."""

    id: str
    display_phone_number: str | None = None
    verified_name: str | None = None
    quality_rating: str | None = None
    code_verification_status: str | None = None
    platform_type: str | None = None
    throughput_level: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
