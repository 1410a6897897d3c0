"""/metrics names only the credentials a key may see; a public scrape names none (unless opted in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from permatoken.server import BrokerConfig

from .conftest import LiveBroker, add_manual


def _scrape(text: str) -> tuple[set[str], dict[str, float]]:
    """The credential names in per-credential series, and the per-health totals."""
    names, totals = set(), {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if "name" in s.labels:
                names.add(s.labels["name"])
            if s.name == "permatoken_credentials":
                totals[s.labels["health"]] = s.value
    return names, totals


def _two_tenants(lb: LiveBroker, new_token: Any) -> None:
    for name in ("acme/wa", "acme/eu", "globex/wa"):
        add_manual(lb.store, name, new_token())


def test_a_reader_granted_one_tenant_sees_only_its_credentials(
    live_broker: LiveBroker, new_token: Any
) -> None:
    _two_tenants(live_broker, new_token)
    limited = live_broker.client(live_broker.key("reader", "acme/*")).get("/metrics")
    assert limited.status_code == 200
    names, totals = _scrape(limited.text)
    assert names == {"acme/wa", "acme/eu"} and "globex" not in limited.text
    assert totals["ok"] == 2
    everything = live_broker.client(live_broker.key("reader")).get("/metrics").text
    assert _scrape(everything) == ({"acme/wa", "acme/eu", "globex/wa"}, totals | {"ok": 3})


def test_public_metrics_are_totals_without_names_unless_opted_in(
    broker_settings: Any,
    store: Any,
    engine: Any,
    fast_config: Callable[..., BrokerConfig],
    new_token: Any,
) -> None:
    with LiveBroker(broker_settings, store, engine, fast_config(metrics_public=True)) as lb:
        _two_tenants(lb, new_token)
        text = lb.client().get("/metrics").text
        names, totals = _scrape(text)
        assert names == set() and totals["ok"] == 3
        assert "acme" not in text and "globex" not in text
        # A key on a public endpoint still sees what it may see.
        keyed = lb.client(lb.key("reader", "acme/*")).get("/metrics").text
        assert _scrape(keyed)[0] == {"acme/wa", "acme/eu"}
    config = fast_config(metrics_public=True, metrics_public_names=True)
    with LiveBroker(broker_settings, store, engine, config) as lb:
        assert _scrape(lb.client().get("/metrics").text)[0] == {"acme/wa", "acme/eu", "globex/wa"}
