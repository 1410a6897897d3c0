"""The sink interface and the registry of kinds by URL scheme. Pure: no I/O here.

A sink URL is ``SCHEME://TARGET[?option=value&…]``. :func:`parse_sink_url` checks it without
touching the destination; :func:`open_sink` imports the kind's module (so boto3 is imported only
for an ``aws-sm`` sink) and builds the :class:`Sink`.

Adding a kind (a Vault KV v2 or Kubernetes Secret sink) is a module with a class that has
``from_spec(spec)`` and ``deliver(delivery)``, plus one line in :data:`KINDS`.

A delivery carries an idempotency key derived from (sink uid, credential id, version): the
same delivery retried after a crash or a timeout carries the same key, so a destination that
offers idempotency (AWS ``ClientRequestToken``) records it once.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from .._exceptions import InputError
from .._secret import Secret
from ..timeutil import isoformat


@dataclass(frozen=True, slots=True)
class KindInfo:
    module: str
    cls: str
    #: What the value looks like at the destination unless ``?format=`` says otherwise.
    default_format: str
    example: str


#: Every sink kind, by URL scheme (the closed list; docs/aws.md and `sink add --help` name it).
KINDS: dict[str, KindInfo] = {
    "aws-sm": KindInfo(
        "permatoken.sinks.aws_sm", "SecretsManagerSink", "json", "aws-sm://SECRET-ID"
    ),
    "file": KindInfo("permatoken.sinks.file", "FileSinkDestination", "raw", "file:///ABS/PATH"),
}
FORMATS = ("json", "raw")
_OPTIONS = {"format"}
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<target>[^?#]*)(?:\?(?P<query>[^#]*))?$")


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """A parsed sink URL: its kind, target (secret id, path) and options."""

    kind: str
    target: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def format(self) -> str:
        return self.options.get("format", KINDS[self.kind].default_format)

    @property
    def url(self) -> str:
        """The canonical URL (options sorted), as stored and shown."""
        query = "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.kind}://{self.target}" + (f"?{query}" if query else "")


def _hint() -> str:
    return "use one of " + ", ".join(k.example for k in KINDS.values()) + " (docs/aws.md)"


def parse_sink_url(url: str) -> SinkSpec:
    """Check a sink URL without touching its destination (InputError naming what is wrong)."""
    m = _URL.match(url.strip())
    if m is None:
        raise InputError(f"sink URL {url!r} is not SCHEME://TARGET", hint=_hint())
    scheme, target, query = m["scheme"], m["target"], m["query"] or ""
    if scheme not in KINDS:
        raise InputError(f"unknown sink kind {scheme!r} in {url!r}", hint=_hint())
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise InputError(
                f"unknown sink option {key!r} in {url!r}",
                hint="the only option is ?format=json or ?format=raw",
            )
        options[key] = value
    if options.get("format", "json") not in FORMATS:
        raise InputError(
            f"sink option format={options['format']!r}: use json or raw",
            hint="e.g. aws-sm://prod/whatsapp?format=raw",
        )
    if scheme == "file":
        if not target.startswith("/") or target.endswith("/") or "/../" in target + "/":
            raise InputError(
                f"file sink {url!r} needs an absolute file path",
                hint="e.g. file:///run/secrets/whatsapp-token",
            )
    elif scheme == "aws-sm":
        if not re.fullmatch(r"[A-Za-z0-9/_+=.@:-]{1,2048}", target):
            raise InputError(
                f"aws-sm sink {url!r} needs a secret name or ARN (letters, digits and /_+=.@-)",
                hint="e.g. aws-sm://prod/whatsapp/token",
            )
    return SinkSpec(scheme, target, options)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One version of one credential, to be written to one sink."""

    sink_uid: str
    credential_id: int
    name: str
    version: int
    token: Secret
    expires_at: datetime | None
    token_type: str | None = None

    def __repr__(self) -> str:
        return f"Delivery({self.name!r} v{self.version} to sink {self.sink_uid})"

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this delivery, different for any other (a UUID)."""
        raw = f"permatoken/sink/{self.sink_uid}/{self.credential_id}/{self.version}".encode()
        return str(uuid.UUID(bytes=hashlib.sha256(raw).digest()[:16]))

    def render(self, fmt: str) -> str:
        """The value as the destination holds it: JSON ``{token, version, expires_at}`` or the
        bare token."""
        if fmt == "raw":
            return self.token.reveal()
        return json.dumps(
            {
                "token": self.token.reveal(),
                "version": self.version,
                "expires_at": isoformat(self.expires_at),
                "credential": self.name,
            }
        )


class Sink(Protocol):
    """A destination: ``deliver`` writes the delivery or raises SinkError (never blocks long)."""

    spec: SinkSpec

    def deliver(self, delivery: Delivery) -> None: ...


def open_sink(spec: SinkSpec) -> Sink:
    """The sink for ``spec`` (imports its kind's module now)."""
    info = KINDS[spec.kind]
    cls: Any = getattr(importlib.import_module(info.module), info.cls)
    sink: Sink = cls.from_spec(spec)
    return sink


__all__ = [
    "FORMATS",
    "KINDS",
    "Delivery",
    "KindInfo",
    "Sink",
    "SinkSpec",
    "open_sink",
    "parse_sink_url",
]
