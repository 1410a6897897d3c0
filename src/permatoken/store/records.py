"""Rows and records of the credential store, with no I/O: how a row becomes a domain record (and
a :class:`VersionMeta` becomes columns), the input checks every aggregate applies before writing,
and the associated data that binds each sealed value to its row.

The associated data is part of every ciphertext: a value copied into another row (another
credential, version, secret name or app) no longer opens. Changing one of these strings makes
every stored value unreadable, so they never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import DecryptionError, InputError, KmsUnavailableError, PermatokenError
from .._secret import Secret, register_secret
from ..models import App, Credential, Health, TokenVersion, VersionMeta, VersionState
from ..timeutil import ensure_utc

_ID_MAX = 64

#: Credential fields holding a Meta id, and how an error names each.
ID_FIELDS = {
    "business_id": "business id",
    "phone_number_id": "phone-number id",
    "app_id": "app id",
}


# --- associated data of sealed values ---------------------------------------------------------


def aad_version(credential_id: int, version: int) -> bytes:
    return f"permatoken/v1/credential:{credential_id}/version:{version}".encode()


def aad_secret(credential_id: int, name: str) -> bytes:
    return f"permatoken/v1/credential:{credential_id}/secret:{name}".encode()


def aad_app(app_id: str) -> bytes:
    return f"permatoken/v1/app:{app_id}".encode()


# --- input checks -----------------------------------------------------------------------------


def check_id(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not (0 < len(value) <= _ID_MAX) or not value.isascii() or not value.isalnum():
        raise InputError(f"{what} must be 1-{_ID_MAX} ASCII letters or digits, got {value[:40]!r}")
    return value


def check_purpose(value: str | None) -> None:
    if value is not None and (len(value) > 40 or not value.replace("-", "").isalnum()):
        raise InputError("purpose must be up to 40 letters, digits or '-' (e.g. messaging)")


# --- row mapping ------------------------------------------------------------------------------


def meta_values(meta: VersionMeta) -> dict[str, Any]:
    return {
        "token_type": meta.token_type,
        "issued_at": meta.issued_at,
        "expires_at": meta.expires_at,
        "data_access_expires_at": meta.data_access_expires_at,
        "scopes": list(meta.scopes),
        "waba_ids": list(meta.waba_ids),
        "user_id": meta.user_id,
        "is_valid": meta.is_valid,
        "verdict": meta.verdict,
        "inspected_at": meta.inspected_at,
    }


def version_record(r: Mapping[Any, Any]) -> TokenVersion:
    return TokenVersion(
        credential_id=r["credential_id"],
        version=r["version"],
        state=VersionState(r["state"]),
        fingerprint=r["fingerprint"],
        kek_id=r["kek_id"],
        meta=VersionMeta(
            token_type=r["token_type"],
            issued_at=ensure_utc(r["issued_at"]),
            expires_at=ensure_utc(r["expires_at"]),
            data_access_expires_at=ensure_utc(r["data_access_expires_at"]),
            scopes=tuple(r["scopes"] or ()),
            waba_ids=tuple(r["waba_ids"] or ()),
            user_id=r["user_id"],
            is_valid=r["is_valid"],
            verdict=r["verdict"],
            inspected_at=ensure_utc(r["inspected_at"]),
        ),
        created_at=ensure_utc(r["created_at"]),  # type: ignore[arg-type]
        state_changed_at=ensure_utc(r["state_changed_at"]),  # type: ignore[arg-type]
    )


def credential_record(r: Mapping[Any, Any], current_version: int | None) -> Credential:
    return Credential(
        id=r["id"],
        name=r["name"],
        tenant=r["tenant"],
        issuer=r["issuer"],
        purpose=r["purpose"],
        business_id=r["business_id"],
        waba_ids=tuple(r["waba_ids"] or ()),
        phone_number_id=r["phone_number_id"],
        app_id=r["app_id"],
        health=Health(r["health"]),
        health_reason=r["health_reason"],
        options=dict(r["options"] or {}),
        policy=dict(r["policy"] or {}),
        current_version=current_version,
        rotation_step=r["rotation_step"],
        next_due_at=ensure_utc(r["next_due_at"]),
        next_action=r["next_action"],
        created_at=ensure_utc(r["created_at"]),
        updated_at=ensure_utc(r["updated_at"]),
    )


def app_record(r: Mapping[Any, Any]) -> App:
    return App(
        id=r["id"],
        name=r["name"],
        require_app_secret=bool(r["require_app_secret"]),
        kek_id=r["secret_kek_id"],
        created_at=ensure_utc(r["created_at"]),  # type: ignore[arg-type]
        updated_at=ensure_utc(r["updated_at"]),  # type: ignore[arg-type]
    )


__all__ = [
    "ID_FIELDS",
    "aad_app",
    "aad_secret",
    "aad_version",
    "app_record",
    "check_id",
    "check_purpose",
    "credential_record",
    "meta_values",
    "version_record",
]


def open_secret(keyring: Any, sealed: Any, aad: bytes, what: str, **context: Any) -> Secret:
    """Open one sealed secret value as a :class:`Secret` (registered for log redaction). KMS
    being unreachable passes through; any other failure is a :class:`DecryptionError` naming
    ``what`` (never the value)."""
    try:
        value = keyring.open(sealed, aad).decode()
    except KmsUnavailableError:
        raise
    except PermatokenError as exc:
        raise DecryptionError(f"cannot decrypt {what}: {exc.message}", **context) from exc
    register_secret(value)
    return Secret(value)
