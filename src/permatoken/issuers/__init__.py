"""Ways of obtaining a new token value, one module each, behind one interface.

An issuer is asked for a new value given the credential's current state, and answers with an
:class:`~permatoken.issuers.base.Obtained`: the value, what it knows about its expiry, companion
secrets to store with it, and whether the old value stays valid.
"""

from __future__ import annotations

from .base import IssueContext, Issuer, Obtained
from .login import LoginIssuer
from .manual import ManualIssuer
from .meta import MetaSystemMintIssuer, MetaSystemRefreshIssuer, MetaUserExchangeIssuer
from .oauth2 import OAuth2RefreshIssuer

#: The registry: each issuer declares its name once, as its class's ``kind``, and the credential
#: secrets it reads, as its ``secrets``. The order (and the names) must match
#: :data:`permatoken.vocabulary.IssuerName`, the dependency-free list the store, the CLI and the HTTP
#: schemas read; tests/issuers/test_registry.py proves they agree.
ISSUER_CLASSES: dict[str, type[Issuer]] = {
    cls.kind: cls
    for cls in (
        ManualIssuer,
        MetaSystemRefreshIssuer,
        MetaSystemMintIssuer,
        MetaUserExchangeIssuer,
        OAuth2RefreshIssuer,
        LoginIssuer,
    )
}


def issuer_for(kind: str) -> Issuer:
    return ISSUER_CLASSES[kind]()


__all__ = [
    "ISSUER_CLASSES",
    "IssueContext",
    "Issuer",
    "LoginIssuer",
    "ManualIssuer",
    "MetaSystemMintIssuer",
    "MetaSystemRefreshIssuer",
    "MetaUserExchangeIssuer",
    "OAuth2RefreshIssuer",
    "Obtained",
    "issuer_for",
]
