"""Builds the long-lived parts (store, Graph client, renewal engine) from settings."""

from __future__ import annotations

from .clocks import build_clock
from .meta.graph import GraphClient
from .rotation import RenewalEngine
from .settings import Settings
from .store import Store
from .timeutil import Clock

__all__ = ["build_clock", "build_engine", "build_graph"]


def build_graph(settings: Settings, clock: Clock | None = None) -> GraphClient:
    if clock is None:
        return GraphClient(settings.graph_url, settings.graph_version)
    return GraphClient(
        settings.graph_url, settings.graph_version, clock=lambda: clock.now().timestamp()
    )


def build_engine(settings: Settings, store: Store, *, clock: Clock | None = None) -> RenewalEngine:
    from .scheduler.policies import PolicyLayers

    clock = clock or store.clock
    graph = build_graph(settings, clock)
    layers = PolicyLayers(settings, store)
    return RenewalEngine(
        store,
        graph,
        clock=clock,
        lease_ttl=settings.lease_ttl,
        policy_resolver=layers.for_credential,
    )
