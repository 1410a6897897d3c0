"""``GET /debug_token``: what a token really is, and a verdict in plain words.

:func:`parse_debug_token` turns Meta's answer into a :class:`DebugTokenResult`;
:func:`verdict` turns that, a clock reading and the renewal policy's date into the sentence a
human reads. Both are pure. What debug data can and cannot tell (reference §2, §3.6):

- ``USER`` living under about two days is a dashboard or short-lived token; longer is a
  long-lived user token (about 60 days);
- ``SYSTEM_USER`` with ``expires_at: 0`` never expires, with an expiry it is the 60-day kind;
- Embedded Signup (BISU) tokens are reported as ``SYSTEM_USER`` too: only the caller, who knows
  where the token came from, can say "BISU" (``kind_hint``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

from ..models import Health, instant_from_unix
from ._body import decode_body
from .error_codes import DEATH_ADVICE, DEATH_REASONS
from .errors import ErrorKind, GraphErrorInfo, TokenDeath, classify_graph_error, graph_error

__all__ = [
    "DebugTokenResult",
    "GranularScope",
    "HealthHint",
    "TokenKind",
    "Verdict",
    "parse_debug_token",
    "token_kind",
    "verdict",
]

#: The health a verdict suggests (``models.Health``; never ``renewing`` or ``failing``, which only
#: the engine knows). Kept under this name for older imports.
HealthHint = Health

SHORT_LIVED: Final = timedelta(days=2)
SIXTY_DAYS: Final = timedelta(days=60)
RENEW_AT_FRACTION: Final = 2 / 3
MESSAGING_SCOPE: Final = "whatsapp_business_messaging"
BISU_NOTE: Final = (
    "Meta reports Embedded Signup (BISU) tokens as SYSTEM_USER too; debug_token cannot tell "
    "them apart."
)
PERMANENT_SETUP: Final = (
    "For a permanent setup create a system user (Business Settings → System users), assign the "
    "app and the WABA, and generate a token; `permatoken add … --issuer meta-system-refresh` "
    "(60-day) or `--issuer meta-system-mint` then keeps it alive"
)


class TokenKind(enum.StrEnum):
    DASHBOARD_OR_USER_SHORT = "dashboard_or_user_short"
    USER_LONG = "user_long"
    SYSTEM_USER_NEVER = "system_user_never"
    SYSTEM_USER_60D = "system_user_60d"
    BISU = "bisu"
    APP = "app"
    PAGE = "page"
    UNKNOWN = "unknown"


class GranularScope(NamedTuple):
    scope: str
    #: Empty when the permission applies to every object the token can reach.
    target_ids: tuple[str, ...]


@dataclass(frozen=True)
class DebugTokenResult:
    """The ``data`` object of a ``debug_token`` response. Times are aware UTC datetimes."""

    is_valid: bool
    app_id: str | None = None
    application: str | None = None
    type: str | None = None
    expires_at: datetime | None = None
    #: ``expires_at`` was 0: Meta says the token never expires.
    never_expires: bool = False
    data_access_expires_at: datetime | None = None
    issued_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    granular_scopes: tuple[GranularScope, ...] = ()
    waba_ids: tuple[str, ...] = ()
    user_id: str | None = None
    profile_id: str | None = None
    error: GraphErrorInfo | None = None


@dataclass(frozen=True)
class Verdict:
    """The truth about a token in plain words. ``summary`` is what a human reads."""

    summary: str
    token_kind: TokenKind
    health_hint: HealthHint
    advice: str | None = None
    reach: str | None = None
    renew_from: datetime | None = None
    notes: tuple[str, ...] = ()


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str) and str(value).strip():
        return str(value).strip()
    return None


def _unix(data: Mapping[str, Any], key: str, status: int) -> tuple[datetime | None, bool]:
    """``(datetime, was_zero)`` for ``data[key]``; absent is ``(None, False)``.

    A value that is not a plausible instant (negative, NaN, 1e30, year 1 or 9999, a word, a
    boolean) refuses the whole answer: guessing "never" or "unknown" would store a lie.
    """
    value = data.get(key)
    try:
        at = instant_from_unix(value, key)
    except ValueError as exc:
        info = GraphErrorInfo(
            kind=ErrorKind.UNKNOWN,
            code=None,
            subcode=None,
            message=f"debug_token answered an impossible {exc}",
            http_status=status,
            advice="Retry later; if it persists, check that PERMATOKEN_GRAPH_URL points at Meta",
        )
        raise graph_error(
            info, f"debug_token failed: {info.describe()}", endpoint="debug_token"
        ) from None
    return at, at is None and value is not None and not isinstance(value, bool)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    return tuple(s for s in (_id(v) for v in value) if s)


def _granular(value: Any) -> tuple[GranularScope, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    result = []
    for entry in value:
        if isinstance(entry, Mapping) and isinstance(entry.get("scope"), str):
            result.append(GranularScope(entry["scope"], _strings(entry.get("target_ids"))))
    return tuple(result)


def parse_debug_token(
    body: bytes | str | Mapping[str, Any], *, status: int = 200
) -> DebugTokenResult:
    """Parse a ``debug_token`` response; raise :class:`GraphError` if it is an error envelope."""
    payload, fallback = decode_body(body)
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping):
        info = classify_graph_error(status if status >= 400 else 400, None, body)
        if not (isinstance(payload, Mapping) and "error" in payload):
            info = GraphErrorInfo(
                kind=ErrorKind.UNKNOWN,
                code=None,
                subcode=None,
                message=fallback or "debug_token answered without a data object",
                http_status=status,
                advice="Check that PERMATOKEN_GRAPH_URL points at Meta or the sandbox",
            )
        raise graph_error(info, f"debug_token failed: {info.describe()}", endpoint="debug_token")

    granular = _granular(data.get("granular_scopes"))
    waba_ids: list[str] = []
    for entry in granular:
        if entry.scope.startswith("whatsapp_"):
            waba_ids.extend(i for i in entry.target_ids if i not in waba_ids)
    expires_at, never = _unix(data, "expires_at", status)
    data_access_expires_at, _ = _unix(data, "data_access_expires_at", status)
    issued_at, _ = _unix(data, "issued_at", status)
    is_valid = data.get("is_valid") is True or data.get("is_valid") == "true"
    error = None
    if isinstance(data.get("error"), Mapping):
        error = classify_graph_error(status, None, {"error": data["error"]})
    elif not is_valid:
        error = classify_graph_error(
            status, None, {"error": {"code": 190, "message": "debug_token: is_valid is false"}}
        )
    application = data.get("application")
    token_type = data.get("type")
    return DebugTokenResult(
        is_valid=is_valid,
        app_id=_id(data.get("app_id")),
        application=application if isinstance(application, str) else None,
        type=token_type.upper() if isinstance(token_type, str) else None,
        expires_at=expires_at,
        never_expires=never,
        data_access_expires_at=data_access_expires_at,
        issued_at=issued_at,
        scopes=_strings(data.get("scopes")),
        granular_scopes=granular,
        waba_ids=tuple(waba_ids),
        user_id=_id(data.get("user_id")),
        profile_id=_id(data.get("profile_id")),
        error=error,
    )


def token_kind(
    result: DebugTokenResult, *, now: datetime, kind_hint: TokenKind | None = None
) -> TokenKind:
    """Which of Meta's token kinds the debug data describes (see the module docstring)."""
    if result.type == "APP":
        return TokenKind.APP
    if result.type == "PAGE":
        return TokenKind.PAGE
    if result.type == "SYSTEM_USER":
        if kind_hint is TokenKind.BISU:
            return TokenKind.BISU
        if result.never_expires:
            return TokenKind.SYSTEM_USER_NEVER
        return TokenKind.SYSTEM_USER_60D if result.expires_at else TokenKind.UNKNOWN
    if result.type == "USER":
        if result.never_expires:
            return TokenKind.USER_LONG
        if result.expires_at is None:
            return TokenKind.UNKNOWN
        start = result.issued_at or now
        short = result.expires_at - start < SHORT_LIVED
        return TokenKind.DASHBOARD_OR_USER_SHORT if short else TokenKind.USER_LONG
    return TokenKind.UNKNOWN


def _left(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def _abbreviated(ids: Sequence[str], limit: int = 5) -> str:
    shown = [i[:4] + "…" if len(i) > 4 else i for i in ids[:limit]]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(shown) + more


def _reach(result: DebugTokenResult) -> str:
    can_message = MESSAGING_SCOPE in result.scopes or any(
        g.scope == MESSAGING_SCOPE for g in result.granular_scopes
    )
    if can_message and result.waba_ids:
        return f"can message WABAs {_abbreviated(result.waba_ids)}"
    if can_message:
        return "can message all WABAs assigned to it"
    if result.waba_ids:
        return f"can manage WABAs {_abbreviated(result.waba_ids)} but lacks {MESSAGING_SCOPE}"
    return f"cannot send WhatsApp messages ({MESSAGING_SCOPE} missing)"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _invalid(result: DebugTokenResult, kind: TokenKind, now: datetime) -> Verdict:
    error = result.error
    expired = result.expires_at is not None and result.expires_at <= now
    death = error.death if error is not None else None
    if expired and death in (None, TokenDeath.UNKNOWN):
        death = TokenDeath.EXPIRED
    if death is not None:
        reason, advice = DEATH_REASONS[death], DEATH_ADVICE[death]
        if death is TokenDeath.EXPIRED and expired and result.expires_at is not None:
            reason = f"it expired on {result.expires_at:%Y-%m-%d %H:%M} UTC"
    else:
        reason = error.message if error is not None else "Meta says it is not valid"
        advice = error.advice if error is not None else DEATH_ADVICE[TokenDeath.UNKNOWN]
    hint = Health.EXPIRED if death is TokenDeath.EXPIRED else Health.INVALID
    advice = _sentence(advice)
    return Verdict(
        f"Token is invalid: {reason}. {advice}", kind, hint, advice=advice, reach=_reach(result)
    )


def _renew_from(result: DebugTokenResult, renew_from: datetime | None) -> tuple[datetime, int]:
    """When renewal starts, and that moment as "day N" of the token's life."""
    assert result.expires_at is not None
    issued = result.issued_at or result.expires_at - SIXTY_DAYS
    if renew_from is None:
        renew_from = issued + (result.expires_at - issued) * RENEW_AT_FRACTION
    return renew_from, round((renew_from - issued) / timedelta(days=1))


def verdict(
    result: DebugTokenResult,
    *,
    now: datetime,
    renew_from: datetime | None = None,
    kind_hint: TokenKind | None = None,
) -> Verdict:
    """The plain-words verdict on an inspected token at ``now``.

    ``renew_from`` is when the renewal policy starts renewing (default: two thirds of the
    token's lifetime). ``kind_hint`` lets a caller who knows the token is a BISU token say so.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    kind = token_kind(result, now=now, kind_hint=kind_hint)
    expired = result.expires_at is not None and result.expires_at <= now
    if not result.is_valid or expired:
        return _invalid(result, kind, now)
    reach = _reach(result)
    left = _left(result.expires_at - now) if result.expires_at is not None else None

    if kind is TokenKind.SYSTEM_USER_NEVER:
        summary = f"System-user token, never expires, valid, {reach}"
        return Verdict(summary, kind, Health.OK, reach=reach, notes=(BISU_NOTE,))
    if kind is TokenKind.BISU:
        lifetime = "never expires" if result.never_expires else f"expires in {left}"
        summary = f"Business-integration (Embedded Signup) token, {lifetime}, valid, {reach}"
        advice = "It dies when the client business removes the app; permatoken checks it daily."
        return Verdict(summary, kind, Health.OK, advice=advice, reach=reach)
    if kind is TokenKind.SYSTEM_USER_60D:
        start, day = _renew_from(result, renew_from)
        if now < start:
            # Sandbox and demo tokens may live minutes: "day 0" would say nothing.
            when = f"from day {day}" if day >= 1 else f"in {_left(start - now)}"
            summary = (
                f"60-day system-user token, expires in {left}; "
                f"permatoken will renew it {when} (policy)"
            )
            return Verdict(
                summary, kind, Health.OK, reach=reach, renew_from=start, notes=(BISU_NOTE,)
            )
        summary = f"60-day system-user token, expires in {left}; renewal is due since day {day}"
        return Verdict(summary, kind, Health.EXPIRING, reach=reach, renew_from=start)
    if kind is TokenKind.DASHBOARD_OR_USER_SHORT:
        summary = f"Dashboard/user token: expires in {left}. It cannot be renewed forever. "
        return Verdict(summary + PERMANENT_SETUP, kind, Health.NEEDS_HUMAN, PERMANENT_SETUP, reach)
    if kind is TokenKind.USER_LONG:
        lifetime = "never expires" if left is None else f"expires in {left}"
        summary = (
            f"Long-lived user token, {lifetime}, valid, {reach}. It can be exchanged for a new "
            "one before then, but not forever: a person must keep using the app. "
        )
        renew_at: datetime | None = None
        hint = Health.OK
        if result.expires_at is not None:
            renew_at, _ = _renew_from(result, renew_from)
            hint = Health.OK if now < renew_at else Health.EXPIRING
        return Verdict(summary + PERMANENT_SETUP, kind, hint, PERMANENT_SETUP, reach, renew_at)
    if kind is TokenKind.APP:
        summary = "App token: valid until the app secret is reset; it inspects tokens but cannot "
        summary += "send messages"
        return Verdict(summary, kind, Health.OK)
    if kind is TokenKind.PAGE:
        advice = "Use a system-user token for WhatsApp."
        summary = "Page token, valid, but the WhatsApp Cloud API does not use page tokens"
        return Verdict(summary, kind, Health.NEEDS_HUMAN, advice=advice, reach=reach)
    lifetime = (
        "never expires"
        if result.never_expires
        else (f"expires in {left}" if left else "expiry unknown")
    )
    summary = f"Token of type {result.type or 'unknown'}, {lifetime}, valid, {reach}"
    return Verdict(summary, kind, Health.OK, reach=reach)
