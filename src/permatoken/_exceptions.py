"""One exception hierarchy for permatoken.

Every error carries a machine-readable ``code`` and its context as attributes, never only in
the message. Foreign exceptions (httpx, SQLAlchemy, cryptography) are translated at the
boundary with ``raise ... from exc``. No message ever contains a secret value.

    PermatokenError
    ├── ConfigError                 bad settings, unreadable config file, bad database URL
    ├── InputError                  a value or argument a user gave is malformed
    │   └── InvalidNameError        a credential name outside the grammar
    ├── StoreError                  the database cannot be used
    │   ├── StoreUnreachableError   cannot connect (names host and port, never the password)
    │   │   └── StoreUnavailableError  reachable but unusable now: locked, read-only, file deleted
    │   ├── SchemaError             schema older or newer than this code, or not a permatoken store
    │   └── ConflictError           a concurrent writer won; nothing was changed
    ├── NotFoundError               unknown credential, version, app or key
    ├── AlreadyExistsError          duplicate name
    ├── CryptoError                 key-encryption key missing, unreadable, wrong or ciphertext tampered
    │   ├── KeyFileError            key file missing, wrong permissions or wrong length
    │   ├── DecryptionError         a value cannot be decrypted (names the credential and version)
    │   └── KmsUnavailableError     AWS KMS could not wrap or unwrap a data key (names the key)
    ├── GraphError                  Meta answered with an error (carries the classification)
    │   └── UpstreamUnreachableError  Meta (or the sandbox) could not be reached at all
    ├── RotationError               a rotation could not complete (carries the step and reason)
    ├── AuthError                   broker API key missing, wrong, expired or forbidden
    ├── BrokerError                 the broker cannot be reached or answered unexpectedly
    ├── BackupError                 a backup file is unreadable, or cannot be restored here
    │   ├── BackupTamperedError     changed, truncated, or not made with these keys (MAC mismatch)
    │   ├── WrongPassphraseError    the passphrase does not open the keys sealed in the backup
    │   └── StoreNotEmptyError      restore refused: the target store already holds data
    ├── SinkError                   a sink refused or could not take a delivery (names the sink)
    ├── ListenError                 a server cannot listen on its address (port in use…)
    └── RowsRefusedError            a bulk import finished but refused some rows (report printed)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .meta.errors import GraphErrorInfo
    from .meta.usage import Usage


class PermatokenError(Exception):
    """Base of every error permatoken raises on purpose."""

    code: str = "error"
    #: A short suggestion of what to do, shown by the CLI under the message.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        self.context = context
        for key, value in context.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        for key, value in self.context.items():
            if isinstance(value, str | int | float | bool) or value is None:
                data[key] = value
        return data


class ConfigError(PermatokenError):
    code = "config_error"


class InputError(PermatokenError):
    code = "invalid_input"


class InvalidNameError(InputError):
    code = "invalid_name"


class StoreError(PermatokenError):
    code = "store_error"


class StoreUnreachableError(StoreError):
    code = "store_unreachable"


class StoreUnavailableError(StoreUnreachableError):
    """The database answers but cannot do the work now (``reason``: locked, read_only, gone)."""

    code = "store_unavailable"


class SchemaError(StoreError):
    code = "schema_mismatch"


class ConflictError(StoreError):
    code = "conflict"


class NotFoundError(PermatokenError):
    code = "not_found"


class AlreadyExistsError(PermatokenError):
    code = "already_exists"


class CryptoError(PermatokenError):
    code = "crypto_error"


class KeyFileError(CryptoError):
    code = "key_file_error"


class DecryptionError(CryptoError):
    code = "decryption_failed"


class KmsUnavailableError(CryptoError):
    """AWS KMS did not answer, or refused to wrap or unwrap a data key; ``key_id`` names the key."""

    code = "kms_unavailable"


class GraphError(PermatokenError):
    """Meta (or the sandbox) answered with an error; ``error`` holds the classification."""

    code = "graph_error"
    error: GraphErrorInfo
    kind: str
    graph_code: int | None
    graph_subcode: int | None
    http_status: int | None
    endpoint: str | None
    ambiguous: bool
    usage: Usage | None


class UpstreamUnreachableError(GraphError):
    """No answer from Meta (connection refused, DNS, timeout): nothing was decided about the
    token. Carries the same attributes as the :class:`GraphError` it was made from."""

    code = "upstream_unreachable"


class RotationError(PermatokenError):
    code = "rotation_failed"


class AuthError(PermatokenError):
    code = "unauthorized"


class BrokerError(PermatokenError):
    code = "broker_error"


class BackupError(PermatokenError):
    code = "backup_error"


class BackupTamperedError(BackupError):
    code = "backup_tampered"


class WrongPassphraseError(BackupError):
    code = "wrong_passphrase"


class StoreNotEmptyError(BackupError):
    code = "store_not_empty"


class SinkError(PermatokenError):
    """A sink could not take a delivery (destination down, refused, misconfigured); ``url``
    names the sink, ``reason`` is ``unreachable``, ``refused`` or ``config``."""

    code = "sink_failed"


class ListenError(PermatokenError):
    """``serve`` or ``sandbox`` cannot listen on the address asked for; names ``host``, ``port``."""

    code = "cannot_listen"


class RowsRefusedError(PermatokenError):
    """``permatoken import`` stored what it could; ``refused`` rows were not (each says why)."""

    code = "rows_refused"
