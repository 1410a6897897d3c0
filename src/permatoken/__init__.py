"""permatoken keeps WhatsApp Business Platform API tokens alive.

The application-facing API: token sources, the ``httpx.Auth`` and the WhatsApp client (see
``permatoken.client`` and ``docs/sdk.md``), and the root of the exception hierarchy.
"""

from ._exceptions import PermatokenError
from .client import (
    AsyncTokenSource,
    AsyncWhatsAppClient,
    CachedToken,
    PermatokenAuth,
    SentMessage,
    TokenSource,
    WhatsAppClient,
    WhatsAppError,
)

__all__ = [
    "AsyncTokenSource",
    "AsyncWhatsAppClient",
    "CachedToken",
    "PermatokenAuth",
    "PermatokenError",
    "SentMessage",
    "TokenSource",
    "WhatsAppClient",
    "WhatsAppError",
]
