"""The assembly point: parts built for each other by constructors, mismatches refused."""

from __future__ import annotations

from typing import Any

import pytest

from permatoken._exceptions import ConfigError
from permatoken.events import EngineEvent, EventKind
from permatoken.meta.graph import GraphClient
from permatoken.rotation import RenewalEngine
from permatoken.runtime import build_runtime
from permatoken.scheduler import PolicyLayers, Scheduler
from permatoken.settings import Settings
from permatoken.store import Store

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _settings(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"scheduler_lease_ttl": 77.0, "lease_ttl": 33.0} | update)


def test_with_a_scheduler_the_engine_leases_as_long_as_the_claims(
    settings: Settings, store: Store
) -> None:
    """One expiry for a claim and the rotation working on it; the same policy layers for both."""
    conf = _settings(settings)
    rt = build_runtime(conf, store, owner="replica-a", scheduler=True)
    try:
        assert rt.scheduler is not None
        assert rt.engine.lease_ttl == rt.scheduler.lease_ttl == 77.0
        assert rt.engine.owner == rt.scheduler.owner == "replica-a"
        assert rt.scheduler.layers is rt.policies
        assert rt.engine.policy_resolver == rt.policies.for_credential
        assert rt.engine.events is rt.events and rt.graph is rt.engine.graph
        assert rt.sinks is None and rt.backups is None
    finally:
        rt.close()


def test_without_a_scheduler_the_engine_keeps_its_own_lease_ttl(
    settings: Settings, store: Store
) -> None:
    """`serve --no-scheduler` and the commands: the rotation lease is `lease_ttl`."""
    rt = build_runtime(_settings(settings), store)
    try:
        assert rt.scheduler is None and rt.engine.lease_ttl == 33.0
    finally:
        rt.close()


def test_a_promotion_wakes_the_sink_worker_built_beside_the_scheduler(
    settings: Settings, store: Store
) -> None:
    """The sink worker is subscribed to promotions before the engine exists; not started yet."""
    rt = build_runtime(_settings(settings), store, scheduler=True, background=True)
    try:
        assert rt.sinks is not None and not rt.sinks._wake.is_set()
        assert rt.backups is None  # backup.every is unset
        rt.engine.events.promoted("acme/wa", 2)
        assert rt.sinks._wake.is_set()
    finally:
        rt.close()


def test_the_scheduler_reacts_to_its_engines_events_through_the_bus(
    settings: Settings, store: Store
) -> None:
    """The scheduler's reactions are a subscriber of the engine's bus (events about unknown
    credentials are ignored, not raised)."""
    rt = build_runtime(_settings(settings), store, scheduler=True)
    try:
        assert rt.scheduler is not None
        assert rt.scheduler.reactions in rt.events._listeners
        rt.events.emit(EngineEvent(EventKind.ROTATION_FAILED, "acme/unknown", {"kind": "x"}))
        assert rt.scheduler.outbox.all_notices("acme/unknown") == []
    finally:
        rt.close()


def _engine(store: Store, **kw: Any) -> RenewalEngine:
    return RenewalEngine(store, GraphClient("http://127.0.0.1:9"), **kw)


def test_the_scheduler_refuses_an_engine_with_another_lease_ttl(
    settings: Settings, store: Store
) -> None:
    """Never patched behind the caller's back: the mismatch is named."""
    layers = PolicyLayers(settings, store)
    engine = _engine(store, lease_ttl=30.0, policy_resolver=layers.for_credential)
    try:
        with pytest.raises(ConfigError, match="lease lasts 60 s but its engine's 30 s"):
            Scheduler(settings, store, engine, policies=layers, lease_ttl=60)
        assert engine.lease_ttl == 30.0
        Scheduler(settings, store, engine, policies=layers, lease_ttl=30)
    finally:
        engine.close()


def test_the_scheduler_refuses_an_engine_that_ignores_the_policy_layers(
    settings: Settings, store: Store
) -> None:
    """An engine resolving policies without settings and tenant layers would plan differently."""
    engine = _engine(store, lease_ttl=settings.scheduler_lease_ttl)
    try:
        with pytest.raises(ConfigError, match="without the settings and tenant layers"):
            Scheduler(settings, store, engine)
        assert engine.policy_resolver is None
    finally:
        engine.close()
