"""Notices really delivered through Apprise: SMTP (aiosmtpd), a JSON webhook, a dead channel."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from permatoken.notify.delivery import Channel, channels_for
from permatoken.settings import Settings
from scheduler.world import DAY, World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append((self.path, json.loads(body)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[list[tuple[str, dict[str, Any]]], int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.received, server.server_address[1]  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_reminder_email_reaches_a_local_smtp_server(
    world: World, smtp: tuple[_Mailbox, int]
) -> None:
    """A reminder for a manual token arrives by email (Apprise mailto:// to aiosmtpd)."""
    box, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=permatoken@example.com&to=ops@example.com"
    value = world.add("acme/mail", issuer="manual", expires_in=10 * DAY, options={"notify": [url]})
    sched = world.scheduler()
    world.advance(DAY + 60)  # added inside the 14-day threshold: reminded at the first check
    sched.tick()
    assert sched.deliverer.run_once() == 1
    [envelope] = box.envelopes
    assert envelope.rcpt_tos == ["ops@example.com"]
    text = envelope.content.decode("utf-8", "replace")
    assert "acme/mail expires in 14d or less" in text
    assert "permatoken rotate acme/mail" in text
    assert value not in text
    [notice] = sched.outbox.all_notices("acme/mail")
    assert (
        notice["state"] == "sent"
        and notice["deliveries"][0]["label"] == f"mailto://127.0.0.1:{port}"
    )


def test_token_invalid_notice_reaches_a_json_webhook(
    world: World, webhook: tuple[list[tuple[str, dict[str, Any]]], int]
) -> None:
    """The inspection that finds a revoked token posts JSON to the configured webhook."""
    received, port = webhook
    value = world.add(
        "acme/hooked",
        kind="system_user",
        issuer="manual",
        options={"notify": f"json://127.0.0.1:{port}/permatoken"},
    )
    sched = world.scheduler()
    world.state.revoke_token(value)
    world.advance(DAY + 1)
    sched.tick()
    sched.deliverer.run_once()
    [(path, payload)] = received
    assert path == "/permatoken"
    assert payload["title"] == "[permatoken] acme/hooked is no longer valid"
    assert "acme/hooked" in payload["message"] and "System users" in payload["message"]
    assert value not in json.dumps(payload)


def test_unreachable_channel_is_retried_recorded_and_never_blocks_renewals(world: World) -> None:
    """A hanging channel: renewals go on; the delivery is retried with back-off and recorded."""
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts connections, never answers
    dead = f"json://127.0.0.1:{hang.getsockname()[1]}/x"
    world.add("acme/manual", issuer="manual", expires_in=5 * DAY, options={"notify": [dead]})
    for i in range(3):
        world.add(f"acme/auto{i}")
    sched = world.scheduler(interval=0.05)
    world.advance(45 * DAY)
    try:
        sched.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(world.store.get(f"acme/auto{i}").current_version == 2 for i in range(3)):
                break
            time.sleep(0.05)
        renewed_after = time.monotonic()
        assert all(world.store.get(f"acme/auto{i}").current_version == 2 for i in range(3))
        # The deliverer is still stuck on the hanging channel (Apprise waits for its timeout).
        while time.monotonic() < deadline:
            [notice] = sched.outbox.all_notices("acme/manual")
            if notice["deliveries"][0]["attempts"] >= 1:
                break
            time.sleep(0.1)
    finally:
        sched.stop(timeout=30)
        hang.close()
    [notice] = sched.outbox.all_notices("acme/manual")
    [d] = notice["deliveries"]
    assert d["attempts"] == 1 and d["state"] == "pending" and d["last_error"]
    assert "/x" not in d["last_error"]  # errors never quote the channel URL
    assert renewed_after < deadline
    # Retried with back-off: nothing before the next attempt time, then a second recorded attempt.
    assert sched.deliverer.run_once() == 0
    world.advance(sched.deliverer.retry_delay(1) + 1)
    assert sched.deliverer.run_once() == 1
    [notice] = sched.outbox.all_notices("acme/manual")
    assert notice["deliveries"][0]["attempts"] == 2
    # Gives up after max_attempts and records it as failed.
    for n in range(2, sched.deliverer.max_attempts):
        world.advance(sched.deliverer.retry_delay(n) + 1)
        sched.deliverer.run_once()
    [notice] = sched.outbox.all_notices("acme/manual")
    assert notice["state"] == "failed"
    assert notice["deliveries"][0]["state"] == "failed"


def test_channels_come_from_global_tenant_and_credential_settings() -> None:
    """Global, tenant and per-credential URLs combine, each once; labels hide credentials."""
    s = Settings(
        notify_urls=["json://a/x"], tenant_notify_urls={"acme": ["mailto://u:pw@b", "json://a/x"]}
    )
    chans = channels_for(s, "acme", {"notify": "slack://T/B/C, json://a/x"})
    assert [c.url for c in chans] == ["json://a/x", "mailto://u:pw@b", "slack://T/B/C"]
    assert channels_for(s, "other", {}) == [Channel("json://a/x")]
    assert Channel("mailto://u:pw@b:25/x?pass=1").label == "mailto://b:25"


def test_every_delivery_attempt_is_counted_in_the_brokers_metrics(
    world: World, webhook: tuple[list[tuple[str, dict[str, Any]]], int]
) -> None:
    """Delivered, failed-and-retried and given-up attempts reach
    ``permatoken_notice_deliveries_total`` by channel scheme, never by host or path."""
    from permatoken.server.metrics import BrokerMetrics

    received, port = webhook
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = closed.getsockname()[1]
    closed.close()  # nothing listens there: every attempt is refused at once
    world.add(
        "acme/ok",
        issuer="manual",
        expires_in=5 * DAY,
        options={"notify": f"json://127.0.0.1:{port}/hook"},
    )
    world.add(
        "acme/down",
        issuer="manual",
        expires_in=5 * DAY,
        options={"notify": f"json://127.0.0.1:{refused}/x"},
    )
    sched = world.scheduler()
    metrics = BrokerMetrics(world.store)
    sched.engine.events.subscribe(metrics.on_engine_event)
    world.advance(DAY + 60)
    sched.tick()
    assert sched.deliverer.run_once() == 2

    def count(result: str) -> float:
        value = metrics.registry.get_sample_value(
            "permatoken_notice_deliveries_total", {"channel": "json", "result": result}
        )
        return value or 0.0

    assert len(received) == 1
    assert (count("ok"), count("retry"), count("failed")) == (1, 1, 0)
    for n in range(1, sched.deliverer.max_attempts):
        world.advance(sched.deliverer.retry_delay(n) + 1)
        sched.deliverer.run_once()
    assert (count("ok"), count("retry"), count("failed")) == (
        1,
        sched.deliverer.max_attempts - 1,
        1,
    )
    text = metrics.render().decode()
    assert str(port) not in text and str(refused) not in text and "/hook" not in text
