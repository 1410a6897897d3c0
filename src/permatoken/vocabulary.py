"""The closed sets of names the layers share: issuer names, credential secret names, report statuses.

Each is declared once, here, in a module that imports nothing of permatoken, so the store, the
issuers, the HTTP schemas, the CLI and the SDK (which must not import the server) can all read it.
Everything else derives from these or is checked against them: tests/issuers/test_registry.py
(issuers and their secrets) and tests/client/test_statuses.py (report statuses).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

#: Issuer names, in the order of ``permatoken.issuers.ISSUER_CLASSES`` (each class's ``kind``).
IssuerName = Literal[
    "manual",
    "meta-system-refresh",
    "meta-system-mint",
    "meta-user-exchange",
    "oauth2-refresh",
    "login",
]
ISSUERS: tuple[IssuerName, ...] = get_args(IssuerName)

#: Credential-level secrets an issuer may read (``IssueContext.secret(name)``); each issuer class
#: declares the ones it uses in its ``secrets``, and together they are exactly these.
SecretName = Literal["refresh_token", "client_secret", "password"]
SECRET_NAMES: tuple[SecretName, ...] = get_args(SecretName)


class ReportStatus(StrEnum):
    """What became of a dead-token report, in the broker API and the SDK alike."""

    #: A new version was made for this report.
    RENEWED = "renewed"
    #: Someone else already rotated: use the newer version.
    NEWER_EXISTS = "newer_exists"
    #: Meta says the reported token still works.
    STILL_VALID = "still_valid"
    NEEDS_HUMAN = "needs_human"
    FAILED = "failed"
    #: Another worker holds the renewal; retry shortly.
    BUSY = "busy"

    @property
    def recovered(self) -> bool:
        """A usable newer version exists after this report."""
        return self in (ReportStatus.RENEWED, ReportStatus.NEWER_EXISTS)

    @property
    def usable(self) -> bool:
        """The credential has a usable current token after this report."""
        return self.recovered or self is ReportStatus.STILL_VALID


__all__ = ["ISSUERS", "SECRET_NAMES", "IssuerName", "ReportStatus", "SecretName"]
