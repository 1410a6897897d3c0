"""Metrics with bounded labels, and audit records aggregated like token reads."""

from __future__ import annotations

from typing import Any

from .conftest import NAME, SEND, Proxied, until


def _proxy_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("permatoken_proxy_")]


def test_metrics_count_outcomes_recoveries_latency_and_name_nothing(proxied: Proxied):
    c = proxied.client()
    assert proxied.send(c, "ok").status_code == 200
    proxied.revoke()
    assert proxied.send(c, "recovered").status_code == 200
    proxied.state.inject_fault(SEND, code=130429, http_status=400)
    assert proxied.send(c, "throttled").status_code == 400
    assert proxied.client(key="pt_" + "q" * 43).get("/v25.0/me").status_code == 401
    lines = _proxy_lines(proxied.broker.client(proxied.broker.key("reader")).get("/metrics").text)
    for expected in (
        'permatoken_proxy_requests_total{outcome="ok"} 1.0',
        'permatoken_proxy_requests_total{outcome="recovered"} 1.0',
        'permatoken_proxy_requests_total{outcome="throttled"} 1.0',
        'permatoken_proxy_requests_total{outcome="refused"} 1.0',
        'permatoken_proxy_requests_total{outcome="token_dead"} 0.0',
        'permatoken_proxy_recoveries_total{result="replayed"} 1.0',
        "permatoken_proxy_upstream_seconds_count 4.0",
        "permatoken_proxy_queue_depth 0.0",
    ):
        assert expected in lines, expected
    joined = "\n".join(lines)
    assert proxied.phone_id not in joined and "acme" not in joined and "/v25.0" not in joined


def test_requests_are_audited_per_key_credential_version_and_outcome(proxied: Proxied):
    """Three sends in one window are one graph.request record with count 3; the recovery is a
    record of the new version and a token.report via the proxy."""
    c = proxied.client()
    for i in range(3):
        assert proxied.send(c, f"m{i}").status_code == 200
    proxied.revoke()
    assert proxied.send(c, "after").status_code == 200
    admin = proxied.broker.client(proxied.broker.key("admin"))

    def records(action: str) -> list[dict[str, Any]]:
        return admin.get("/v1/audit", params={"action": action}).json()["items"]  # type: ignore[no-any-return]

    until(lambda: len(records("graph.request")) == 2)
    by_result = {r["result"]: r for r in records("graph.request")}
    assert set(by_result) == {"ok", "recovered"}
    ok, recovered = by_result["ok"], by_result["recovered"]
    assert ok["target"] == recovered["target"] == NAME
    assert (ok["detail"]["count"], ok["detail"]["version"]) == (3, 1)
    assert (recovered["detail"]["count"], recovered["detail"]["version"]) == (1, 2)
    assert ok["actor"].startswith("key:") and ok["source"] == "127.0.0.1"
    [report] = records("token.report")
    assert report["result"] == "renewed" and report["detail"]["via"] == "proxy"
