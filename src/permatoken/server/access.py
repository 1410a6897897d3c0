"""Roles, grants and the key format, as the server and older imports know them.

The rules are pure and shared by the store, the CLI and the dashboard: they live in
:mod:`permatoken.access`.
"""

from __future__ import annotations

from ..access import (
    ALLOWED,
    KEY_PREFIX,
    Action,
    ApiKey,
    Principal,
    Role,
    covers,
    grant_matches,
    grant_within,
    hash_key,
    looks_like_key,
    new_key,
    new_key_id,
    parse_duration,
    same_hash,
    validate_grant,
)

__all__ = [
    "ALLOWED",
    "KEY_PREFIX",
    "Action",
    "ApiKey",
    "Principal",
    "Role",
    "covers",
    "grant_matches",
    "grant_within",
    "hash_key",
    "looks_like_key",
    "new_key",
    "new_key_id",
    "parse_duration",
    "same_hash",
    "validate_grant",
]
