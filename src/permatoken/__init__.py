"""permatoken keeps WhatsApp Business Platform API tokens alive.

The application-facing API: token sources, the ``httpx.Auth`` and the WhatsApp client (see
``permatoken.client`` and ``docs/sdk.md``), and the root of the exception hierarchy.

The client names are loaded on first use (module ``__getattr__``), so ``import permatoken`` and
the ``permatoken`` command do not pay for httpx until something needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import PermatokenError

if TYPE_CHECKING:
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

_FROM_CLIENT = frozenset(__all__) - {"PermatokenError"}


def __getattr__(name: str) -> Any:
    if name in _FROM_CLIENT:
        from . import client

        value = getattr(client, name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
