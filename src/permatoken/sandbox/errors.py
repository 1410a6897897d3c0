"""Meta-shaped errors: the envelope, the 190 family's messages and the ``WWW-Authenticate`` header.

Handlers raise :class:`GraphAPIError`; the dispatcher turns it into the JSON envelope of reference
section 5.1 with the header of section 5.1/10. Messages follow the reference's captured strings.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

_PACIFIC = ZoneInfo("America/Los_Angeles")
# Meta always writes English names; strftime's %A/%b would follow the process locale.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CANNOT_PARSE = "Invalid OAuth access token - Cannot parse access token"

#: Messages of the code-190 subcodes (reference 5.3).
SUBCODE_MESSAGES: dict[int, str] = {
    458: "Error validating access token: The user has not authorized application {app_id}.",
    459: "You cannot access the app till you log in to www.facebook.com and follow the "
    "instructions given.",
    460: "Error validating access token: The session has been invalidated because the user "
    "changed their password or Facebook has changed the session for security reasons.",
    464: "Error validating access token: Sessions for the user are not allowed because the user "
    "is not a confirmed user.",
    466: "Error validating access token: The session was invalidated explicitly using an API call.",
    467: "Error validating access token: The session is invalid because the user logged out.",
    492: "Error validating access token: The session is invalid because the user's page role "
    "has changed.",
}

#: Default texts for codes a fault injection may name without a message.
CODE_MESSAGES: dict[int, str] = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    190: CANNOT_PARSE,
    200: "(#200) Permissions error",
    368: "(#368) Temporarily blocked for policies violations",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80007: "(#80007) The WhatsApp Business Account has reached its rate limit.",
    80008: "(#80008) There have been too many calls to this WhatsApp Business account. "
    "Wait a bit and try again.",
    130429: "(#130429) Rate limit hit",
    131000: "(#131000) Something went wrong",
    131016: "(#131016) Service unavailable",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    131057: "(#131057) Account in maintenance mode",
}

TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 80008, 130429, 131000, 131016, 131057})


class GraphAPIError(Exception):
    """One error answer of the imitated Graph API; the dispatcher renders it."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        subcode: int | None = None,
        status: int = 400,
        type: str = "OAuthException",
        error_data: dict[str, Any] | None = None,
        is_transient: bool | None = None,
        auth_kind: str | None = None,
    ) -> None:
        self.code = code
        self.message = message if message is not None else CODE_MESSAGES.get(code, f"(#{code})")
        self.subcode = subcode
        self.status = status
        self.type = type
        self.error_data = error_data
        self.is_transient = is_transient
        self.auth_kind = auth_kind
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.error_data is not None:
            error["error_data"] = self.error_data
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        transient = self.is_transient
        if transient is None and self.code in TRANSIENT_CODES:
            transient = True
        if transient is not None:
            error["is_transient"] = transient
        error["fbtrace_id"] = trace_id()
        return {"error": error}

    def www_authenticate(self) -> str:
        return www_authenticate(self.kind(), self.message)

    def kind(self) -> str:
        """The second token of ``WWW-Authenticate`` (reference section 10)."""
        if self.auth_kind is not None:
            return self.auth_kind
        if self.code == 190:
            return "invalid_token"
        if self.subcode in (36007, 36008, 36009):
            return "invalid_code"
        if self.code in (1, 2) or self.status >= 500:
            return "unknown_error"
        return "invalid_request"


def www_authenticate(kind: str, message: str) -> str:
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'OAuth "Facebook Platform" "{kind}" "{escaped}"'


def trace_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def pacific_time(unix: float) -> str:
    """``Thursday, 29-Jul-21 10:00:00 PDT`` in America/Los_Angeles (PDT or PST by date)."""
    moment = dt.datetime.fromtimestamp(int(unix), tz=_PACIFIC)
    zone = moment.tzname() or "PDT"
    return (
        f"{_WEEKDAYS[moment.weekday()]}, {moment.day:02d}-{_MONTHS[moment.month - 1]}-"
        f"{moment.year % 100:02d} {moment:%H:%M:%S} {zone}"
    )


def expired_message(expires_at: float, now: float) -> str:
    return (
        f"Error validating access token: Session has expired on {pacific_time(expires_at)}. "
        f"The current time is {pacific_time(now)}."
    )


def subcode_message(subcode: int | None, app_id: str) -> str:
    if subcode is None:
        return "Invalid OAuth access token."
    template = SUBCODE_MESSAGES.get(subcode, "Error validating access token: Invalid session.")
    return template.format(app_id=app_id)


# -- common errors ---------------------------------------------------------------------------


def missing_param(name: str) -> GraphAPIError:
    return GraphAPIError(100, f"(#100) The parameter {name} is required")


def wrong_type(name: str, expected: str) -> GraphAPIError:
    return GraphAPIError(100, f"(#100) Param {name} must be {expected}")


def unknown_object(object_id: str, method: str = "get") -> GraphAPIError:
    return GraphAPIError(
        100,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read the "
        "Graph API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33,
        type="GraphMethodException",
    )


def unknown_path(components: str) -> GraphAPIError:
    return GraphAPIError(2500, f"Unknown path components: {components}")


def bad_client_secret() -> GraphAPIError:
    return GraphAPIError(1, "Error validating client secret.")


def bad_app_id() -> GraphAPIError:
    return GraphAPIError(101, "Error validating application. Invalid application ID.")


def foreign_app() -> GraphAPIError:
    return GraphAPIError(100, "(#100) The App_id in the input_token did not match the Viewing App")


def throttled(code: int, status: int, **extra: Any) -> GraphAPIError:
    return GraphAPIError(code, status=status, is_transient=True, **extra)
