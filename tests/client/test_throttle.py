"""Throttling is a budget, not a dead token: no renewal; the limiter keeps bursts under 130429."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx
import pytest

from permatoken.client import (
    AsyncTokenSource,
    AsyncWhatsAppClient,
    RateLimiter,
    SentMessage,
    ThrottledError,
    TokenSource,
    WhatsAppClient,
)

from ._support import MINT, NAME, SEND, Sandbox, World

#: The sandbox's throughput limit for the burst tests (Meta's default is 80; a higher limit keeps
#: the 2,000-message burst short while staying below what the sandbox process can serve).
LIMIT = 100


@pytest.mark.parametrize("code", [4, 80007, 130429])
def test_a_throttle_never_triggers_a_renewal(world: World, code: int):
    """4, 80007 and 130429 from Meta raise ThrottledError; no debug_token, no mint, same version."""
    world.sandbox.fault(endpoint=SEND, code=code, count=3)
    with (
        TokenSource.embedded(NAME, world.settings) as tokens,
        WhatsAppClient(tokens, world.phone_id) as wa,
    ):
        for _ in range(3):
            with pytest.raises(ThrottledError) as caught:
                wa.send_text("+15550000001", "slow down")
            assert caught.value.graph_code == code and caught.value.retry_after
        assert wa.send_text("+15550000001", "after the throttle").id.startswith("wamid.")
        assert tokens.current().version == 1
    assert world.sandbox.calls(MINT) == [] and world.sandbox.calls("GET /debug_token") == []
    assert [c["error_code"] for c in world.sandbox.calls(SEND)] == [code, code, code, None]


async def _burst(
    sandbox: Sandbox, world: World, count: int, limiter: RateLimiter | None
) -> list[Any]:
    results: list[Any] = []
    async with AsyncTokenSource.embedded(NAME, world.settings) as tokens:
        async with AsyncWhatsAppClient(
            tokens, world.phone_id, rate_limit=limiter, limits=httpx.Limits(max_connections=8)
        ) as wa:

            async def one(i: int) -> None:
                try:
                    results.append(
                        await wa.send_text(f"+1555{i:07d}", f"burst {i} {uuid.uuid4().hex}")
                    )
                except Exception as exc:
                    results.append(exc)

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(one, i)
    return results


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    return {"messages_per_second": LIMIT}


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_limiter_keeps_a_2000_message_burst_free_of_130429(world: World):
    """2,000 concurrent sends on one number at the sandbox's limit: all accepted, no 130429."""
    results = await _burst(world.sandbox, world, 2000, RateLimiter(LIMIT))
    assert all(isinstance(r, SentMessage) for r in results), next(
        r for r in results if not isinstance(r, SentMessage)
    )
    throttled = [c for c in world.sandbox.calls(SEND) if c["error_code"] == 130429]
    assert throttled == []
    assert len(world.sandbox.messages()) == 2000


@pytest.mark.anyio
async def test_without_the_limiter_the_same_kind_of_burst_hits_130429(world: World):
    """The control: unpaced, a 400-message burst trips the limit (so the test above has teeth).

    The sandbox clock is frozen for the burst, so all 400 sends fall into one of its seconds
    however slowly a loaded machine serves them (the limit is counted on the sandbox clock).
    """
    world.sandbox._json("POST", "/clock", json={"freeze": True})
    try:
        results = await _burst(world.sandbox, world, 400, None)
    finally:
        world.sandbox._json("POST", "/clock", json={"unfreeze": True})
    assert any(isinstance(r, ThrottledError) and r.graph_code == 130429 for r in results)
    assert world.sandbox.calls(MINT) == []


def test_the_limiter_paces_to_its_rate():
    """Reservations: a burst of ``burst`` at once, then one every 1/(rate*0.85) s."""
    limiter = RateLimiter(100)
    delays = [limiter.reserve("p", now=0.0) for _ in range(100)]
    assert delays[: limiter.burst] == [0.0] * limiter.burst
    sends_in_first_second = sum(1 for d in delays if d < 1.0)
    assert sends_in_first_second <= 100 - limiter.burst
    assert limiter.reserve("other", now=0.0) == 0.0  # numbers are independent
