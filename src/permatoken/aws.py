"""The boundary to AWS (KMS, Secrets Manager): boto3 clients from the standard AWS environment,
and botocore's exceptions translated into plain words.

boto3 is the optional extra ``permatoken[aws]`` and is imported here only, when a client is
first needed. Everything else comes from the standard AWS environment (``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``…, profiles, instance roles), never from permatoken's
own settings, so an operator configures AWS once for every tool.

Clients time out fast and retry little: a destination that is down must fail a delivery quickly
(the sink worker retries with its own back-off), and a KMS that is down must not hold a read for
long (cached data keys serve meanwhile).

botocore logs every request and response body at DEBUG: a ``PutSecretValue`` body holds the
token, a KMS ``Decrypt`` answer holds a data key. So the first client made raises the
``botocore`` and ``boto3`` loggers to WARNING, whatever the root level: no secret reaches a
log even when an operator turns DEBUG on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ._exceptions import ConfigError

INSTALL_HINT = "pip install 'permatoken[aws]'"

SERVICES = {"kms": "AWS KMS", "secretsmanager": "AWS Secrets Manager"}
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """A boto3 client for ``service`` (``kms``, ``secretsmanager``), shared by the process."""
    with _lock:
        found = _clients.get(service)
        if found is not None:
            return found
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError
        except ImportError as exc:
            raise ConfigError(
                "AWS support is not installed (boto3 is missing)", hint=INSTALL_HINT
            ) from exc
        _quiet_boto()
        config = Config(
            connect_timeout=3,
            read_timeout=10,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        try:
            made = boto3.session.Session().client(service, config=config)
        except BotoCoreError as exc:
            raise ConfigError(
                f"cannot set up the {SERVICES.get(service, service)} client: {exc}",
                hint="set AWS_DEFAULT_REGION (and credentials: AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, a profile or a role) in the environment",
            ) from exc
        _clients[service] = made
        return made


def _quiet_boto() -> None:
    for name in ("botocore", "boto3"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def reset_clients() -> None:
    """Forget the clients (tests point the environment at another endpoint)."""
    with _lock:
        _clients.clear()


@dataclass(frozen=True, slots=True)
class AwsFailure:
    """What went wrong talking to AWS: ``kind`` is ``unreachable``, ``refused`` or ``config``;
    ``code`` is AWS's error code when it answered (``AccessDeniedException``…)."""

    kind: str
    code: str | None
    message: str


def classify(exc: BaseException) -> AwsFailure | None:
    """A botocore exception in plain words; None for anything that is not botocore's."""
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - without boto3 there is no botocore error either
        return None
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "Unknown")
        message = str(err.get("Message") or code)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        kind = "unreachable" if isinstance(status, int) and status >= 500 else "refused"
        if code in ("ThrottlingException", "TooManyRequestsException", "KMSInternalException"):
            kind = "unreachable"  # try again later, nothing was decided
        return AwsFailure(kind, code, f"{code}: {message}")
    if isinstance(exc, bx.NoCredentialsError | bx.NoRegionError | bx.PartialCredentialsError):
        return AwsFailure("config", None, str(exc))
    if isinstance(
        exc,
        bx.EndpointConnectionError
        | bx.ConnectTimeoutError
        | bx.ReadTimeoutError
        | bx.ConnectionClosedError,
    ):
        return AwsFailure("unreachable", None, f"no answer ({type(exc).__name__})")
    if isinstance(exc, bx.BotoCoreError):
        return AwsFailure("unreachable", None, f"{type(exc).__name__}: {exc}")
    return None


def config_hint(failure: AwsFailure) -> str:
    if failure.kind == "config":
        return (
            "set AWS_DEFAULT_REGION and credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "a profile or a role) in the environment"
        )
    if failure.kind == "unreachable":
        return "check that AWS (or AWS_ENDPOINT_URL) is reachable from this host"
    return "check the IAM permissions listed in docs/aws.md"


__all__ = ["INSTALL_HINT", "AwsFailure", "classify", "client", "config_hint", "reset_clients"]
