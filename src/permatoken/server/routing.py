"""The broker's route table: every resource module's ``OPERATIONS``, in routing order.

Each ``routes_*`` module declares the operations of its own handlers (route, method, schemas,
summary); this module only puts them in order. Starlette tries routes in that order, and the
OpenAPI document (``openapi.build_document``) lists them in it.
"""

from __future__ import annotations

from ..providers import api as onboarding
from . import (
    routes_apps,
    routes_credentials,
    routes_history,
    routes_keys,
    routes_service,
    routes_tokens,
)
from .openapi import Op


def operations() -> list[Op]:
    """Every routed operation; the token read first (the hot path), the service routes last."""
    return [
        *routes_tokens.OPERATIONS,
        *routes_credentials.OPERATIONS,
        *routes_apps.OPERATIONS,
        *onboarding.OPERATIONS,
        *routes_history.OPERATIONS,
        *routes_keys.OPERATIONS,
        *routes_service.OPERATIONS,
    ]


__all__ = ["operations"]
