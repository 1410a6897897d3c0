"""Sinks: the current token of a credential pushed where applications already read secrets.

``base`` holds the small interface (:class:`~.base.Sink`, :class:`~.base.Delivery`) and the
registry by URL scheme; one module per kind (``file``, ``aws_sm``) implements it; ``worker``
runs the deliveries inside ``permatoken serve``. A Vault KV v2 or Kubernetes Secret sink is one
more module and one registry line (docs/aws.md).
"""

from __future__ import annotations

from .base import KINDS, Delivery, Sink, SinkSpec, open_sink, parse_sink_url

__all__ = ["KINDS", "Delivery", "Sink", "SinkSpec", "open_sink", "parse_sink_url"]
