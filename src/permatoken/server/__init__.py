"""The broker: the HTTP API applications use at run time (``permatoken serve``)."""

from .app import create_app
from .broker import Broker, BrokerConfig

__all__ = ["Broker", "BrokerConfig", "create_app"]
