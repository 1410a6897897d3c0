"""One exception hierarchy for permatoken.

Every error carries a machine-readable ``code`` and its context as attributes, never only in
the message. Foreign exceptions (httpx, SQLAlchemy, cryptography) are translated at the
boundary with ``raise ... from exc``. No message ever contains a secret value.

The context of an error is declared: each class that carries context takes it as typed keyword
arguments of its ``__init__`` and stores them as attributes of the same names (``None`` when not
given). :attr:`PermatokenError.context_fields` lists them, read from that signature.

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

from os import PathLike
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .meta.errors import GraphErrorInfo
    from .meta.usage import Usage


class PermatokenError(Exception):
    """Base of every error permatoken raises on purpose."""

    code: ClassVar[str] = "error"
    #: A short suggestion of what to do, shown by the CLI under the message.
    hint: str | None = None
    #: The context attributes: the keyword arguments of the class's ``__init__`` but ``hint``.
    context_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and "context_fields" not in cls.__dict__:
            code = init.__code__
            names = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
            cls.context_fields = tuple(n for n in names if n != "hint")

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message

    @property
    def context(self) -> dict[str, Any]:
        """The context attributes that are set (not ``None``), by name."""
        values = {name: getattr(self, name) for name in self.context_fields}
        return {name: value for name, value in values.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        for key, value in self.context.items():
            if isinstance(value, str | int | float | bool):
                data[key] = value
        return data


class ConfigError(PermatokenError):
    code = "config_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: str | PathLike[str] | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.setting = setting


class InputError(PermatokenError):
    code = "invalid_input"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        app_id: str | None = None,
        path: str | PathLike[str] | None = None,
        value_kind: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.app_id = app_id
        self.path = path
        self.value_kind = value_kind


class InvalidNameError(InputError):
    code = "invalid_name"


class StoreError(PermatokenError):
    """The database cannot be used. The family's context: ``host``/``port`` (unreachable),
    ``reason`` (unavailable: locked, read_only, gone), ``revision`` (schema), ``constraint``."""

    code = "store_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        host: str | None = None,
        port: int | None = None,
        path: str | PathLike[str] | None = None,
        reason: str | None = None,
        revision: str | None = None,
        constraint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.host = host
        self.port = port
        self.path = path
        self.reason = reason
        self.revision = revision
        self.constraint = constraint


class StoreUnreachableError(StoreError):
    code = "store_unreachable"


class StoreUnavailableError(StoreUnreachableError):
    code = "store_unavailable"


class SchemaError(StoreError):
    code = "schema_mismatch"


class ConflictError(StoreError):
    code = "conflict"


class NotFoundError(PermatokenError):
    code = "not_found"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        app_id: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.app_id = app_id
        self.version = version


class AlreadyExistsError(PermatokenError):
    code = "already_exists"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        app_id: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.app_id = app_id


class CryptoError(PermatokenError):
    """Keys or ciphertexts cannot be used. The family's context: ``kek_id`` (``kek_ids``, comma
    separated), ``path`` (key file), ``name``/``version``/``app_id`` (what cannot be decrypted),
    ``key_id`` and ``reason`` (KMS)."""

    code = "crypto_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        kek_id: str | None = None,
        kek_ids: str | None = None,
        table: str | None = None,
        path: str | PathLike[str] | None = None,
        name: str | None = None,
        version: int | None = None,
        app_id: str | None = None,
        key_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.kek_id = kek_id
        self.kek_ids = kek_ids
        self.table = table
        self.path = path
        self.name = name
        self.version = version
        self.app_id = app_id
        self.key_id = key_id
        self.reason = reason


class KeyFileError(CryptoError):
    code = "key_file_error"


class DecryptionError(CryptoError):
    code = "decryption_failed"


class KmsUnavailableError(CryptoError):
    code = "kms_unavailable"


class GraphError(PermatokenError):
    """Meta (or the sandbox) answered with an error; ``error`` holds the classification, from
    which ``kind``, ``graph_code``, ``graph_subcode`` and ``http_status`` are read."""

    code = "graph_error"
    context_fields: ClassVar[tuple[str, ...]] = (
        "error",
        "kind",
        "graph_code",
        "graph_subcode",
        "http_status",
        "endpoint",
        "ambiguous",
        "usage",
    )

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        error: GraphErrorInfo,
        endpoint: str | None = None,
        ambiguous: bool = False,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.error = error
        self.kind: str = str(error.kind)
        self.graph_code: int | None = error.code
        self.graph_subcode: int | None = error.subcode
        self.http_status: int | None = error.http_status
        self.endpoint = endpoint
        self.ambiguous = ambiguous
        self.usage = usage


class UpstreamUnreachableError(GraphError):
    """No answer from Meta at all: nothing was decided about the token (GraphError's fields)."""

    code = "upstream_unreachable"


class RotationError(PermatokenError):
    """A rotation could not complete. ``reason`` classifies it (``upstream``, ``throttled``,
    ``transient``, ``unconfirmed_dead`` …); ``needs_human``: no retry can fix it; ``retry_after``:
    seconds upstream asked to wait; ``ambiguous``: the request may have taken effect; ``option``:
    the issuer option at fault; ``status``: the outcome that made it fail."""

    code = "rotation_failed"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        reason: str | None = None,
        needs_human: bool = False,
        retry_after: float | None = None,
        ambiguous: bool = False,
        option: str | None = None,
        status: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.reason = reason
        self.needs_human = needs_human
        self.retry_after = retry_after
        self.ambiguous = ambiguous
        self.option = option
        self.status = status
        self.version = version


class AuthError(PermatokenError):
    code = "unauthorized"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.status = status


class BrokerError(PermatokenError):
    code = "broker_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        name: str | None = None,
        status: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.status = status
        self.url = url


class BackupError(PermatokenError):
    """The family's context: ``path``, ``format_version``, ``revision`` (schema of the backup),
    ``mac`` (tampered: which MAC failed), ``tables`` (store not empty: which hold rows)."""

    code = "backup_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: str | PathLike[str] | None = None,
        format_version: int | None = None,
        revision: str | None = None,
        mac: str | None = None,
        tables: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.format_version = format_version
        self.revision = revision
        self.mac = mac
        self.tables = tables


class BackupTamperedError(BackupError):
    code = "backup_tampered"


class WrongPassphraseError(BackupError):
    code = "wrong_passphrase"


class StoreNotEmptyError(BackupError):
    code = "store_not_empty"


class SinkError(PermatokenError):
    """A sink could not take a delivery; ``url`` names it; ``reason``: unreachable, refused, config."""

    code = "sink_failed"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        url: str | None = None,
        reason: str | None = None,
        aws_code: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.reason = reason
        self.aws_code = aws_code


class ListenError(PermatokenError):
    """``serve`` or ``sandbox`` cannot listen on the address asked for; names ``host``, ``port``."""

    code = "cannot_listen"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.port = port


class RowsRefusedError(PermatokenError):
    """``permatoken import`` stored what it could; ``refused`` rows were not (each says why)."""

    code = "rows_refused"

    def __init__(self, message: str, *, hint: str | None = None, refused: int = 0) -> None:
        super().__init__(message, hint=hint)
        self.refused = refused
