"""Errors the SDK raises, each a subclass of the one permatoken hierarchy.

Every message says what to check; none contains a token or an API key. Foreign exceptions
(httpx, JSON) are translated here and chained with ``raise … from exc``::

    PermatokenError
    ├── BrokerError
    │   ├── BrokerUnavailableError     the broker cannot be reached (start-up, or a report)
    │   └── BrokerProtocolError        the broker answered something the SDK does not understand
    ├── AuthError
    │   ├── ApiKeyError                401: API key missing, wrong, expired or revoked
    │   └── CredentialForbiddenError   403: the key has no grant for this credential
    ├── NotFoundError
    │   └── CredentialNotFoundError    404: no credential with that name
    ├── RotationError
    │   └── RecoveryFailedError        a dead token was reported and no new one came back
    ├── InputError
    │   └── SourceNotStartedError      an AsyncTokenSource was read before ``start()``
    └── WhatsAppError                  a WhatsApp call failed
        ├── WhatsAppTransportError     no answer (``ambiguous``: the message may have been sent)
        ├── UnexpectedAnswerError      a 2xx answer without the expected fields
        └── WhatsAppGraphError (also a GraphError)   Meta answered with an error
            ├── TokenDeadError         190 family, after the one recovery attempt
            ├── ThrottledError         4, 17, 32, 613, 80007, 80008, 130429 …: wait ``retry_after``
            ├── PairRateLimitedError   131056: this recipient only
            ├── WhatsAppPermissionError  3, 10, 200-299 …
            ├── BadRequestError        100, 13xxxx: fix the request
            └── TransientError         1, 2, 131000 …: retry later
"""

from __future__ import annotations

from typing import ClassVar

from .._exceptions import (
    AuthError,
    BrokerError,
    GraphError,
    InputError,
    NotFoundError,
    PermatokenError,
    RotationError,
)
from ..meta.errors import ErrorKind, GraphErrorInfo

__all__ = [
    "ApiKeyError",
    "BadRequestError",
    "BrokerProtocolError",
    "BrokerUnavailableError",
    "CredentialForbiddenError",
    "CredentialNotFoundError",
    "PairRateLimitedError",
    "RecoveryFailedError",
    "SourceNotStartedError",
    "ThrottledError",
    "TokenDeadError",
    "TransientError",
    "UnexpectedAnswerError",
    "WhatsAppError",
    "WhatsAppGraphError",
    "WhatsAppPermissionError",
    "WhatsAppTransportError",
    "graph_exception",
]


class BrokerUnavailableError(BrokerError):
    code = "broker_unavailable"
    hint = "check the broker URL, that `permatoken serve` runs there, and the network in between"


class BrokerProtocolError(BrokerError):
    code = "broker_protocol"
    hint = (
        "check that the URL points at a permatoken broker (not a proxy page) of a matching version"
    )


class ApiKeyError(AuthError):
    code = "api_key_rejected"
    hint = (
        "check the API key (`permatoken keys list`); create a new one with `permatoken keys create`"
    )


class CredentialForbiddenError(AuthError):
    code = "forbidden"
    hint = "grant the key access to this credential: `permatoken keys create --grant 'tenant/*'`"


class CredentialNotFoundError(NotFoundError):
    code = "credential_not_found"
    hint = "check the credential name; `permatoken status` lists them"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint, name=name)
        #: The HTTP status the broker answered (None for the embedded source).
        self.status = status


class RecoveryFailedError(RotationError):
    """A dead token was reported but no newer version came back (``status`` says why)."""

    code = "recovery_failed"


class SourceNotStartedError(InputError):
    code = "source_not_started"
    hint = "use `async with source:` or `await source.start()` before reading it"


class WhatsAppError(PermatokenError):
    """Base of every failed WhatsApp call."""

    code = "whatsapp_error"


class WhatsAppTransportError(WhatsAppError):
    """No HTTP answer. ``ambiguous`` is True when the request may have reached Meta."""

    code = "whatsapp_transport"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        endpoint: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.ambiguous = ambiguous


class UnexpectedAnswerError(WhatsAppError):
    code = "unexpected_answer"

    def __init__(
        self, message: str, *, hint: str | None = None, endpoint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint


class WhatsAppGraphError(WhatsAppError, GraphError):
    """Meta answered with an error; ``error`` holds :class:`GraphErrorInfo`."""

    code = "graph_error"
    context_fields: ClassVar[tuple[str, ...]] = (
        *GraphError.context_fields,
        "phone_number_id",
        "recovery",
    )

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        error: GraphErrorInfo,
        endpoint: str | None = None,
        phone_number_id: str | None = None,
        recovery: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, error=error, endpoint=endpoint)
        self.phone_number_id = phone_number_id
        #: Why the one recovery attempt did not help (None when none was attempted).
        self.recovery = recovery

    @property
    def retry_after(self) -> float | None:
        return self.error.retry_after


class TokenDeadError(WhatsAppGraphError):
    code = "token_dead"


class ThrottledError(WhatsAppGraphError):
    code = "throttled"


class PairRateLimitedError(WhatsAppGraphError):
    code = "pair_rate_limited"


class WhatsAppPermissionError(WhatsAppGraphError):
    code = "permission_denied"


class BadRequestError(WhatsAppGraphError):
    code = "bad_request"


class TransientError(WhatsAppGraphError):
    code = "transient"


_BY_KIND: dict[ErrorKind, type[WhatsAppGraphError]] = {
    ErrorKind.TOKEN_DEAD: TokenDeadError,
    ErrorKind.THROTTLED: ThrottledError,
    ErrorKind.PAIR_RATE_LIMITED: PairRateLimitedError,
    ErrorKind.PERMISSION: WhatsAppPermissionError,
    ErrorKind.WRONG_TOKEN_KIND: WhatsAppPermissionError,
    ErrorKind.BAD_REQUEST: BadRequestError,
    ErrorKind.TRANSIENT: TransientError,
}


def graph_exception(
    info: GraphErrorInfo,
    *,
    endpoint: str,
    phone_number_id: str | None = None,
    recovery: str | None = None,
) -> WhatsAppGraphError:
    """The typed exception for a classified Graph error (pure)."""
    cls = _BY_KIND.get(info.kind, WhatsAppGraphError)
    message = info.describe()
    if recovery:
        message += f"; recovery failed: {recovery}"
    if info.retry_after is not None and cls in (ThrottledError, PairRateLimitedError):
        message += f"; retry in {info.retry_after:g} s"
    return cls(
        message,
        hint=info.advice or None,
        error=info,
        endpoint=endpoint,
        phone_number_id=phone_number_id,
        recovery=recovery,
    )
