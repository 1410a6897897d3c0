"""httpx's and httpcore's loggers, redacted before the Graph clients send anything.

httpx logs every request URL at INFO, and Meta's GET endpoints carry tokens and secrets in the
query (``input_token``, ``fb_exchange_token``, ``client_secret``). A logger-level filter redacts
them in whatever handlers the application configured. A logger's filters see only the records of
that logger, not its children's: httpcore logs through its modules' loggers (``httpcore.http11``
logs response headers, where Meta may echo a token), so each is named.
"""

from __future__ import annotations

import logging
from typing import Final

from .._secret import RedactingFilter

__all__ = ["HTTP_LOGGERS", "guard_httpx_logs"]

HTTP_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def guard_httpx_logs() -> None:
    """Add one :class:`RedactingFilter` to each of :data:`HTTP_LOGGERS` (idempotent)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
