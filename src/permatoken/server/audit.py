"""The audit log, as the server and older imports know it: stored by :mod:`permatoken.store.audit`."""

from __future__ import annotations

from ..store.audit import (
    GENESIS,
    AuditLog,
    AuditRecord,
    ChainedRecord,
    Verification,
    record_hash,
    verify_chain,
)

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditRecord",
    "ChainedRecord",
    "Verification",
    "record_hash",
    "verify_chain",
]
