"""``aws-sm://SECRET-ID``: the token as the ``AWSCURRENT`` version of an AWS Secrets Manager
secret (AWS moves the one before to ``AWSPREVIOUS``).

Each delivery is one ``PutSecretValue`` (``CreateSecret`` when the secret does not exist yet)
whose ``ClientRequestToken`` is the delivery's idempotency key, so AWS's version id *is*
(sink, credential, version). A retry first looks for that version id (``DescribeSecret``) and
stops if AWS already has it: a crash between AWS's answer and our record of it, or two replicas
delivering at once, never makes a second AWS version of one permatoken version (and AWS itself
refuses a reused token with a different value). The secret holds JSON
``{"token", "version", "expires_at", "credential"}``, or the bare token with ``?format=raw``.

Permissions: ``secretsmanager:DescribeSecret``, ``secretsmanager:PutSecretValue`` and, to
create missing secrets, ``secretsmanager:CreateSecret`` (docs/aws.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import aws
from .._exceptions import PermatokenError, SinkError
from .base import Delivery, SinkSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SecretsManagerSink:
    spec: SinkSpec

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> SecretsManagerSink:
        return cls(spec)

    @property
    def secret_id(self) -> str:
        return self.spec.target

    def deliver(self, delivery: Delivery) -> None:
        try:
            sm = aws.client("secretsmanager")
            outcome = self._put(sm, delivery)
        except PermatokenError as exc:
            raise SinkError(
                f"sink {self.spec.url}: {exc.message}",
                hint=exc.hint,
                url=self.spec.url,
                reason="config",
            ) from exc
        except Exception as exc:
            failure = aws.classify(exc)
            if failure is None:
                raise
            raise SinkError(
                f"sink {self.spec.url}: AWS Secrets Manager: {failure.message}",
                hint=aws.config_hint(failure),
                url=self.spec.url,
                reason=failure.kind,
                aws_code=failure.code,
            ) from None
        log.info(
            "%s version %d %s AWS Secrets Manager secret %s",
            delivery.name,
            delivery.version,
            outcome,
            self.secret_id,
        )

    def _put(self, sm: Any, delivery: Delivery) -> str:
        from botocore.exceptions import ClientError

        token = delivery.idempotency_key
        value = delivery.render(self.spec.format)
        try:
            described = sm.describe_secret(SecretId=self.secret_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            described = None
        if described is None:
            try:
                sm.create_secret(
                    Name=self.secret_id,
                    SecretString=value,
                    ClientRequestToken=token,
                    Description=f"WhatsApp token of {delivery.name}, kept current by permatoken",
                )
                return "created"
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
                    raise
                described = sm.describe_secret(SecretId=self.secret_id)  # created meanwhile
        if token in (described.get("VersionIdsToStages") or {}):
            return "was already in"
        sm.put_secret_value(SecretId=self.secret_id, SecretString=value, ClientRequestToken=token)
        return "written to"


__all__ = ["SecretsManagerSink"]
