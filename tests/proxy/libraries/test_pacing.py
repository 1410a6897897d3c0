"""Pacing with real processes: a burst over Meta's limit, through ``permatoken serve``, paced
free of 130429 (the sandbox in its own process, so its clock is not starved by the clients).
The control without pacing is ``tests/proxy/test_pacing.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from client._support import World

from .conftest import SEND, Serve

LIMIT = 20  # the sandbox's throughput limit per number; the burst is 3 seconds' worth at once


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    return {"messages_per_second": LIMIT}


@pytest.fixture
def serve_env() -> dict[str, str]:
    return {
        "PERMATOKEN_PROXY__MESSAGES_PER_SECOND": str(LIMIT),
        "PERMATOKEN_PROXY__PACING_MAX_WAIT": "30",
    }


def test_a_burst_over_the_limit_from_4_clients_is_paced_free_of_130429(
    world: World, serve: Serve, api_key: str
):
    async def burst() -> list[httpx.Response]:
        clients = [
            httpx.AsyncClient(
                base_url=serve.base_url(),
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=60,
            )
            for _ in range(4)
        ]
        try:
            return list(
                await asyncio.gather(
                    *(
                        clients[i % 4].post(
                            f"/v25.0/{world.phone_id}/messages",
                            json={
                                "messaging_product": "whatsapp",
                                "to": f"1555{i:07d}",
                                "text": {"body": f"b{i}"},
                            },
                        )
                        for i in range(3 * LIMIT)
                    )
                )
            )
        finally:
            for c in clients:
                await c.aclose()

    results = asyncio.run(burst())
    assert [r.status_code for r in results] == [200] * (3 * LIMIT), [
        r.text for r in results if r.status_code != 200
    ]
    assert [c for c in world.sandbox.calls(SEND) if c["error_code"] == 130429] == []
    assert len(world.sandbox.accepted_bodies()) == 3 * LIMIT
