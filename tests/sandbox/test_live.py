"""Behaviour that needs a real socket, and the thread-safety of the state under uvicorn."""

from __future__ import annotations

import threading

import httpx
import pytest

from _live_sandbox import ThreadSandbox
from permatoken.sandbox import SandboxState

from ._support import TEXT, bearer


def test_dropped_connection_over_the_network(live: ThreadSandbox, fx, state: SandboxState):
    state.inject_fault("GET /me", kind="drop")
    with httpx.Client(base_url=live.url, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"]))
        assert client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"])).is_success


def test_timeout_fault_trips_the_client_read_timeout(live: ThreadSandbox, fx, state: SandboxState):
    state.inject_fault("GET /me", kind="timeout", timeout_seconds=2)
    with httpx.Client(base_url=live.url, timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/me", headers=bearer(fx["tokens"]["system_user"]["value"]))


def test_respond_fault_drips_its_body_over_the_network(live: ThreadSandbox, state: SandboxState):
    """chunk_bytes/chunk_delay_seconds: the body arrives in pieces, as from a slow proxy."""
    state.inject_fault(
        "GET /me", kind="respond", body="0123456789", chunk_bytes=3, chunk_delay_seconds=0.05
    )
    with httpx.Client(base_url=live.url, timeout=5) as client, client.stream("GET", "/me") as r:
        chunks = list(r.iter_raw())
    assert b"".join(chunks) == b"0123456789" and len(chunks) >= 2


def test_state_is_safe_to_use_from_test_threads_while_serving(
    live: ThreadSandbox, fx, state: SandboxState
):
    """Threads mint, revoke and read logs while the server sends; nothing is lost or torn."""
    phone = fx["phone_numbers"][0]["id"]
    state.config.pair_burst = 10_000
    errors: list[BaseException] = []
    minted: list[str] = []

    def sender() -> None:
        try:
            with httpx.Client(base_url=live.url, timeout=5) as client:
                for _ in range(15):
                    r = client.post(
                        f"/v25.0/{phone}/messages",
                        json=TEXT,
                        headers=bearer(fx["tokens"]["system_user"]["value"]),
                    )
                    assert r.status_code == 200, r.text
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def tinkerer() -> None:
        try:
            for _ in range(50):
                value = state.create_token("system_user_60d")["value"]
                state.revoke_token(value)
                minted.append(value)
                state.calls()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (sender, sender, tinkerer, tinkerer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(state.messages()) == 30
    seqs = [c["seq"] for c in state.calls()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(state.token(v) is not None and state.token(v).revoked for v in minted)
