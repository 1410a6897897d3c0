"""The Python SDK: a token source, an ``httpx.Auth`` that recovers from dead tokens, and a small
WhatsApp Cloud API client (sync and async). See ``docs/sdk.md``.

>>> async with AsyncTokenSource.embedded("acme/messaging") as tokens:      # doctest: +SKIP
...     async with AsyncWhatsAppClient(tokens, phone_number_id="1065…") as wa:
...         sent = await wa.send_text("+16505551234", "Hello")
"""

from .auth import PermatokenAuth
from .errors import (
    ApiKeyError,
    BadRequestError,
    BrokerProtocolError,
    BrokerUnavailableError,
    CredentialForbiddenError,
    CredentialNotFoundError,
    PairRateLimitedError,
    RecoveryFailedError,
    SourceNotStartedError,
    ThrottledError,
    TokenDeadError,
    TransientError,
    UnexpectedAnswerError,
    WhatsAppError,
    WhatsAppGraphError,
    WhatsAppPermissionError,
    WhatsAppTransportError,
)
from .models import CachedToken, PhoneNumberInfo, ReportAnswer, SentMessage
from .ratelimit import RateLimiter
from .source import AsyncTokenSource, TokenSource
from .whatsapp import AsyncWhatsAppClient, WhatsAppClient

__all__ = [
    "ApiKeyError",
    "AsyncTokenSource",
    "AsyncWhatsAppClient",
    "BadRequestError",
    "BrokerProtocolError",
    "BrokerUnavailableError",
    "CachedToken",
    "CredentialForbiddenError",
    "CredentialNotFoundError",
    "PairRateLimitedError",
    "PermatokenAuth",
    "PhoneNumberInfo",
    "RateLimiter",
    "RecoveryFailedError",
    "ReportAnswer",
    "SentMessage",
    "SourceNotStartedError",
    "ThrottledError",
    "TokenDeadError",
    "TokenSource",
    "TransientError",
    "UnexpectedAnswerError",
    "WhatsAppClient",
    "WhatsAppError",
    "WhatsAppGraphError",
    "WhatsAppPermissionError",
    "WhatsAppTransportError",
]
