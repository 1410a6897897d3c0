"""``file:///ABS/PATH``: the token written atomically with mode 0600 (the ``permatoken render``
file sink, now as ``serve`` configuration). A reader sees the old value or the new one, never
a part; the default content is the bare token and a newline (``?format=json`` for JSON)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import InputError, SinkError
from ..client.delivery import FileSink
from .base import Delivery, SinkSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileSinkDestination:
    spec: SinkSpec

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> FileSinkDestination:
        return cls(spec)

    @property
    def path(self) -> Path:
        return Path(self.spec.target)

    def deliver(self, delivery: Delivery) -> None:
        text = delivery.render(self.spec.format)
        try:
            FileSink(self.path).write_bytes(text.encode() + b"\n")
        except InputError as exc:
            raise SinkError(
                f"file sink {self.spec.url}: {exc.message}",
                hint=f"create the directory {self.path.parent} (mode 0700) or change the sink: "
                "`permatoken sink remove`, then `permatoken sink add`",
                url=self.spec.url,
                reason="config",
            ) from exc
        except OSError as exc:
            raise SinkError(
                f"file sink {self.spec.url}: cannot write {self.path}: {exc.strerror}",
                hint=f"check that this user can write in {self.path.parent}",
                url=self.spec.url,
                reason="refused",
            ) from exc
        log.info("wrote %s version %d to %s", delivery.name, delivery.version, self.path)


__all__ = ["FileSinkDestination"]
