"""The CLI's one mapping table: each :class:`~permatoken.PermatokenError` family to an exit code.

Most specific first; the first class an error is an instance of gives its code, anything else
exits 1. docs/cli.md documents every code. A module of its own (re-exported by
:mod:`permatoken.cli`) so that command modules can use the table without importing the package
that imports them.
"""

from __future__ import annotations

from .._exceptions import (
    AlreadyExistsError,
    AuthError,
    BackupError,
    BrokerError,
    ConfigError,
    CryptoError,
    GraphError,
    InputError,
    ListenError,
    NotFoundError,
    PermatokenError,
    RotationError,
    RowsRefusedError,
    SinkError,
    StoreError,
    UpstreamUnreachableError,
)

__all__ = ["EXIT_CODES", "INTERNAL_ERROR", "INTERRUPTED", "exit_code_for"]

EXIT_CODES: list[tuple[type[PermatokenError], int]] = [
    (InputError, 2),
    (NotFoundError, 3),
    (AlreadyExistsError, 4),
    (StoreError, 5),
    (CryptoError, 6),
    (ConfigError, 7),
    (UpstreamUnreachableError, 12),
    (GraphError, 8),
    (RotationError, 9),
    (AuthError, 10),
    (BrokerError, 11),
    (ListenError, 13),
    (BackupError, 14),
    (RowsRefusedError, 15),
    (SinkError, 16),
]
INTERRUPTED = 130
INTERNAL_ERROR = 70


def exit_code_for(exc: PermatokenError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1
