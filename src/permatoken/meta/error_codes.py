"""Meta's error vocabulary: the kinds and token deaths, and the codes, subcodes and texts behind them.

Data and text matching only, no decision: :func:`permatoken.meta.errors.classify_graph_error`
(whose module docstring draws the code → kind table) reads these tables. Kept apart so that the
classifier stays one readable function and a new Graph code is a one-line change here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "DEATH_ADVICE",
    "DEATH_REASONS",
    "ErrorKind",
    "TokenDeath",
    "advice_for",
    "death_for",
]


class ErrorKind(enum.StrEnum):
    TOKEN_DEAD = "token_dead"  # noqa: S105
    WRONG_TOKEN_KIND = "wrong_token_kind"  # noqa: S105
    PERMISSION = "permission"
    THROTTLED = "throttled"
    PAIR_RATE_LIMITED = "pair_rate_limited"
    TRANSIENT = "transient"
    BAD_REQUEST = "bad_request"
    UNKNOWN = "unknown"


class TokenDeath(enum.StrEnum):
    """Why Meta says a token is dead. None of these can be renewed with the same token."""

    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALIDATED = "invalidated"
    APP_NOT_INSTALLED = "app_not_installed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105
    LOGGED_OUT = "logged_out"
    CHECKPOINTED = "checkpointed"
    UNCONFIRMED = "unconfirmed"
    UNPARSEABLE = "unparseable"
    UNKNOWN = "unknown"


RETRYABLE: Final = frozenset(
    {ErrorKind.THROTTLED, ErrorKind.PAIR_RATE_LIMITED, ErrorKind.TRANSIENT}
)

# --- codes, and the wait each one suggests (seconds) -------------------------------------------

THROTTLE_HINTS: Final[Mapping[int, float]] = {
    4: 60.0,
    17: 60.0,
    32: 60.0,
    613: 60.0,
    80007: 60.0,
    80008: 60.0,
    130429: 5.0,
    131048: 60.0,
    133016: 300.0,
}
TRANSIENT_HINTS: Final[Mapping[int, float]] = {
    1: 2.0,
    2: 2.0,
    131000: 2.0,
    131016: 5.0,
    131057: 60.0,
}
PAIR_RATE_LIMITED_CODE: Final = 131056
PAIR_HINT: Final = 6.0  # one message per 6 s to the same user (reference §3.7)
DEFAULT_TRANSIENT_HINT: Final = 2.0
DEFAULT_THROTTLE_HINT: Final = 60.0

DEAD_CODES: Final = frozenset({190, 102, 104, 0, 452})
PERMISSION_CODES: Final = frozenset({3, 10, 368, 131005, 131031})
BAD_REQUEST_CODES: Final = frozenset({100, 101, 135000})

# --- texts that change what a code means ---------------------------------------------------------

#: 2500 is Graph's "OAuthException" for a bad path as well as for a missing token: only the
#: latter says anything about the token (a wrong URL must never trigger a renewal).
TOKEN_2500: Final = re.compile(r"access token", re.I)
WRONG_KIND: Final = re.compile(
    r"must be called with an? [\w ]*access token|debug only access token", re.I
)
CLIENT_SECRET: Final = re.compile(r"client secret", re.I)
#: ``(#613)`` or ``(# 613)`` in a message whose ``code`` field is missing.
CODE_PREFIX: Final = re.compile(r"\(#\s*(-?\d+)\)")

# --- why a token died ----------------------------------------------------------------------------

_SUBCODE_DEATH: Final[Mapping[int, TokenDeath]] = {
    458: TokenDeath.APP_NOT_INSTALLED,
    459: TokenDeath.CHECKPOINTED,
    460: TokenDeath.PASSWORD_CHANGED,
    463: TokenDeath.EXPIRED,
    464: TokenDeath.UNCONFIRMED,
    466: TokenDeath.REVOKED,
    467: TokenDeath.LOGGED_OUT,
    492: TokenDeath.INVALIDATED,
}
# Subcodes go missing in real responses; the English message text is the second opinion.
_MESSAGE_DEATH: Final = (
    (re.compile(r"session has expired|token.{0,20}expired|has expired", re.I), TokenDeath.EXPIRED),
    (
        re.compile(r"has not authorized application|not installed", re.I),
        TokenDeath.APP_NOT_INSTALLED,
    ),
    (
        re.compile(r"changed (?:their|the) password|changed the session", re.I),
        TokenDeath.PASSWORD_CHANGED,
    ),
    (re.compile(r"logged out", re.I), TokenDeath.LOGGED_OUT),
    (re.compile(r"follow the instructions|checkpoint", re.I), TokenDeath.CHECKPOINTED),
    (re.compile(r"unconfirmed", re.I), TokenDeath.UNCONFIRMED),
    (re.compile(r"revoked|invalidated (?:explicitly|through|via|using)", re.I), TokenDeath.REVOKED),
    (re.compile(r"cannot parse access token|malformed access token", re.I), TokenDeath.UNPARSEABLE),
    (
        re.compile(r"session (?:is invalid|has been invalidated)|invalid session", re.I),
        TokenDeath.INVALIDATED,
    ),
)


def death_for(subcode: int | None, message: str, code: int | None) -> TokenDeath:
    """Why a dead token died: the subcode when Meta sent a known one, else the message text."""
    if subcode is not None and subcode in _SUBCODE_DEATH:
        return _SUBCODE_DEATH[subcode]
    for pattern, death in _MESSAGE_DEATH:
        if pattern.search(message):
            return death
    if code == 190 and re.search(r"invalid oauth access token", message, re.I):
        return TokenDeath.INVALIDATED
    return TokenDeath.UNKNOWN


# --- what to tell a human ------------------------------------------------------------------------

DEATH_REASONS: Final[Mapping[TokenDeath, str]] = {
    TokenDeath.EXPIRED: "it has expired",
    TokenDeath.REVOKED: "it was revoked",
    TokenDeath.INVALIDATED: "Meta invalidated its session",
    TokenDeath.APP_NOT_INSTALLED: "the app is no longer installed for its user or business",
    TokenDeath.PASSWORD_CHANGED: "the user changed their password or Meta reset the session",
    TokenDeath.LOGGED_OUT: "the user logged out",
    TokenDeath.CHECKPOINTED: "Meta put the user account on a security checkpoint",
    TokenDeath.UNCONFIRMED: "the user account is not confirmed",
    TokenDeath.UNPARSEABLE: "Meta cannot parse it",
    TokenDeath.UNKNOWN: "Meta rejected it",
}
DEATH_ADVICE: Final[Mapping[TokenDeath, str]] = {
    TokenDeath.EXPIRED: (
        "An expired token can never be renewed: mint a new one with another valid admin or "
        "system-user token (`--issuer meta-system-mint`), or generate a new one in Business "
        "Settings → System users"
    ),
    TokenDeath.REVOKED: "Generate or mint a new token; a revoked token never works again",
    TokenDeath.INVALIDATED: "Generate or mint a new token",
    TokenDeath.APP_NOT_INSTALLED: (
        "Re-install the app for the system user (or ask the client business to reconnect it "
        "through Embedded Signup), then generate a new token"
    ),
    TokenDeath.PASSWORD_CHANGED: (
        "Log in again and generate a new token; a system-user token does not depend on a password"
    ),
    TokenDeath.LOGGED_OUT: (
        "Generate a new token; a system-user token does not end when someone logs out"
    ),
    TokenDeath.CHECKPOINTED: (
        "Log in at www.facebook.com, follow the instructions, then generate a new token"
    ),
    TokenDeath.UNCONFIRMED: "Confirm the account at www.facebook.com, then generate a new token",
    TokenDeath.UNPARSEABLE: (
        "Check the stored value (cut-off copy, quotes, whitespace) and add the full token again"
    ),
    TokenDeath.UNKNOWN: "Run `permatoken inspect` to see why, then generate or mint a new token",
}
_KIND_ADVICE: Final[Mapping[ErrorKind, str]] = {
    ErrorKind.WRONG_TOKEN_KIND: (
        "The call needs another kind of token (for example the app token for debug_token); "
        "the token itself may be fine"
    ),
    ErrorKind.PERMISSION: (
        "Grant the missing permission or asset: assign the WABA and the app to the system user "
        "in Business Settings and generate a token with whatsapp_business_management and "
        "whatsapp_business_messaging"
    ),
    ErrorKind.THROTTLED: "Slow down and retry later; do not refresh the token",
    ErrorKind.PAIR_RATE_LIMITED: (
        "Too many messages to this recipient; retry this one later, others are unaffected"
    ),
    ErrorKind.TRANSIENT: "Retry a few times with backoff",
    ErrorKind.BAD_REQUEST: "Fix the request or the configuration; retrying will not help",
    ErrorKind.UNKNOWN: "Not retried automatically; check Meta's status page and the message",
}
_SPECIFIC_ADVICE: Final = (
    (re.compile(r"client secret", re.I), "Check the app secret stored for this app"),
    (
        re.compile(r"appsecret_proof", re.I),
        "Register the app secret so permatoken signs calls with appsecret_proof",
    ),
    (
        re.compile(r"did not match the viewing app", re.I),
        "The token belongs to another app: inspect it with that app's id and secret",
    ),
)


def advice_for(kind: ErrorKind, death: TokenDeath | None, message: str) -> str:
    """What to do: the death's advice, else advice for a known message, else the kind's."""
    if death is not None:
        return DEATH_ADVICE[death]
    for pattern, advice in _SPECIFIC_ADVICE:
        if pattern.search(message):
            return advice
    return _KIND_ADVICE[kind]
