"""API keys, as the server and older imports know them: stored by :mod:`permatoken.store.apikeys`."""

from __future__ import annotations

from ..store.apikeys import MAX_GRANTS, KeyStore

__all__ = ["MAX_GRANTS", "KeyStore"]
