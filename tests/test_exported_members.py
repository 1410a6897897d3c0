"""The public API, pinned (as httpx's tests/test_exported_members.py does).

Adding or removing a public name is a deliberate change: update the list here, the docs
(docs/sdk.md) and the CHANGELOG together.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "permatoken": [
        "AsyncTokenSource",
        "AsyncWhatsAppClient",
        "CachedToken",
        "PermatokenAuth",
        "PermatokenError",
        "SentMessage",
        "TokenSource",
        "WhatsAppClient",
        "WhatsAppError",
    ],
    "permatoken.client": [
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
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_the_pinned_public_api(module_name: str) -> None:
    """`__all__` lists exactly the pinned names, sorted."""
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC[module_name]


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_exported_name_resolves_and_says_where_it_lives(module_name: str) -> None:
    """Each name in `__all__` can be imported and belongs to permatoken (not a stray re-export)."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        member = getattr(module, name)
        assert getattr(member, "__module__", "").startswith("permatoken"), name


def test_the_root_exports_the_same_objects_as_the_client() -> None:
    """`permatoken.X` is `permatoken.client.X` for every client name the root re-exports."""
    root = importlib.import_module("permatoken")
    client = importlib.import_module("permatoken.client")
    for name in root.__all__:
        if name in client.__all__:
            assert getattr(root, name) is getattr(client, name), name
