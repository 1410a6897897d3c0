"""Broker mode: token source over `permatoken serve`, bad input, restarts, multi-process storm."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from _waiting import wait_for
from permatoken.client import (
    ApiKeyError,
    BrokerProtocolError,
    BrokerUnavailableError,
    CredentialForbiddenError,
    CredentialNotFoundError,
    SentMessage,
    TokenSource,
    WhatsAppClient,
)

from ._broker import Broker, create_key, free_port, storm
from ._support import NAME, World
from .test_delivery import _rotate

WORKER = str(Path(__file__).parent / "_storm_worker.py")


def test_the_source_reads_the_current_token_from_the_broker(
    world: World, broker: Broker, api_key: str, store: Any
):
    with TokenSource.from_broker(broker.url, api_key, NAME) as tokens:
        cached = tokens.current()
    assert cached.version == 1 and cached.value.reveal() == store.reveal(NAME).reveal()


def test_bad_input_raises_typed_errors_that_never_show_the_key(
    world: World, broker: Broker, api_key: str
):
    """Wrong key, ungranted and unknown credential, unreachable broker, not a broker at all."""
    wrong = "pt_" + "x" * 43
    with pytest.raises(ApiKeyError) as caught:
        TokenSource.from_broker(broker.url, wrong, NAME)
    assert wrong not in str(caught.value) and caught.value.hint
    other = create_key("other/*")
    with pytest.raises(CredentialForbiddenError, match="acme/messaging"):
        TokenSource.from_broker(broker.url, other, NAME)
    with pytest.raises(CredentialNotFoundError, match="acme/nothing"):
        TokenSource.from_broker(broker.url, api_key, "acme/nothing")
    with pytest.raises(BrokerUnavailableError, match="cannot reach") as unreachable:
        TokenSource.from_broker(f"http://127.0.0.1:{free_port()}", api_key, NAME)
    assert api_key not in str(unreachable.value)
    with pytest.raises((BrokerProtocolError, BrokerUnavailableError)):
        TokenSource.from_broker(world.url, api_key, NAME)  # the sandbox is no broker


def _send_loop(wa: WhatsAppClient, stop: threading.Event, results: list[Any], tag: str) -> None:
    i = 0
    while not stop.is_set():
        try:
            results.append(wa.send_text(f"+1666{i:07d}", f"{tag} {i}"))
        except Exception as exc:
            results.append(exc)
        i += 1
        time.sleep(0.01)


def test_a_rotation_reaches_the_cache_within_a_second_without_a_failed_send(
    world: World, broker: Broker, api_key: str, store: Any
):
    """Long poll: the new version is cached < 1 s after promotion; sends keep succeeding."""
    tag = uuid.uuid4().hex
    with (
        TokenSource.from_broker(broker.url, api_key, NAME) as tokens,
        WhatsAppClient(tokens, world.phone_id) as wa,
    ):
        stop, results = threading.Event(), []
        sender = threading.Thread(target=_send_loop, args=(wa, stop, results, tag))
        sender.start()
        wait_for(lambda: len(results) >= 3, what="the sender to be sending")
        assert _rotate(world) == 2
        promoted = time.monotonic()
        while tokens.current().version != 2 and time.monotonic() - promoted < 2:
            time.sleep(0.005)
        lag = time.monotonic() - promoted
        sent = len(results)
        wait_for(lambda: len(results) >= sent + 3, what="sends with the new token")
        stop.set()
        sender.join()
    assert tokens.current().version == 2 and lag < 1.0, f"cache lagged {lag:.2f} s"
    assert results and all(isinstance(r, SentMessage) for r in results)
    assert len([b for b in world.sandbox.accepted_bodies() if b.startswith(tag)]) == len(results)


def test_a_broker_restart_during_sends_loses_nothing(
    world: World, broker: Broker, api_key: str, caplog: pytest.LogCaptureFixture
):
    """Broker down for ~2 s while sending: cached token served, one warning, every message once."""
    caplog.set_level(logging.INFO, logger="permatoken.client.source")
    tag = uuid.uuid4().hex
    with TokenSource.from_broker(broker.url, api_key, NAME, max_backoff=0.5) as tokens:
        with WhatsAppClient(tokens, world.phone_id) as wa:
            stop, results = threading.Event(), []
            sender = threading.Thread(target=_send_loop, args=(wa, stop, results, tag))
            sender.start()
            wait_for(lambda: len(results) >= 3, what="the sender to be sending")
            broker.stop()
            # The source has noticed the broker is gone, and sends go on with the cached token.
            wait_for(
                lambda: any(r.levelno == logging.WARNING for r in caplog.records),
                what="the token source to notice the broker is down",
            )
            sent = len(results)
            wait_for(lambda: len(results) >= sent + 20, what="sends while the broker is down")
            broker.start()
            assert _rotate(world) == 2  # the restarted broker's feed works again
            deadline = time.monotonic() + 15
            while tokens.current().version != 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            sender.join()
        assert tokens.current().version == 2
    assert results and all(isinstance(r, SentMessage) for r in results), [
        r for r in results if not isinstance(r, SentMessage)
    ][:3]
    bodies = [b for b in world.sandbox.accepted_bodies() if b.startswith(tag)]
    assert len(bodies) == len(set(bodies)) == len(results)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert api_key not in caplog.text


@pytest.mark.slow
def test_four_processes_storm_through_the_broker_renew_once_and_deliver_each_once(
    world: World, broker: Broker, api_key: str, store: Any
):
    """4 processes x 250 concurrent sends after a revocation: one mint, 1,000 accepted once."""
    import os

    env = dict(os.environ, PERMATOKEN_API_KEY=api_key)
    tags = [f"p{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
    commands = [[sys.executable, WORKER, broker.url, NAME, world.phone_id, t, "250"] for t in tags]
    reports = storm(commands, env, lambda: world.revoke_current(store))
    assert [r["errors"] for r in reports] == [[]] * 4
    assert [r["ok"] for r in reports] == [250] * 4
    assert world.sandbox.mints() == 1
    accepted = world.sandbox.accepted_bodies()
    expected = sorted(f"{tag} {i}" for tag in tags for i in range(250))
    assert sorted(accepted) == expected  # no loss, no duplicate
    assert {r["version"] for r in reports} == {2}
