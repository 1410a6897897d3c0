"""Kept for older imports: credentials are in ``routes_credentials``, apps in ``routes_apps``."""

from __future__ import annotations

from .routes_apps import list_apps, put_app
from .routes_credentials import (
    create_credential,
    delete_credential,
    get_credential,
    inspect_credential,
    list_credentials,
    patch_credential,
    revoke_credential,
    rotate_credential,
)

__all__ = [
    "create_credential",
    "delete_credential",
    "get_credential",
    "inspect_credential",
    "list_apps",
    "list_credentials",
    "patch_credential",
    "put_app",
    "revoke_credential",
    "rotate_credential",
]
