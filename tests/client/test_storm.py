"""Storms: many concurrent sends right after Meta revoked the token.

The promise: exactly one upstream renewal, every message accepted exactly once (counted in the
sandbox's message log: no loss, no duplicate), none failed.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx
import pytest

from permatoken.client import AsyncTokenSource, AsyncWhatsAppClient, SentMessage

from ._support import NAME, SEND, World

pytestmark = pytest.mark.anyio
#: The sandbox answers fastest with a handful of connections (it is one Python process).
LIMITS = httpx.Limits(max_connections=8)


async def _send_all(
    wa: AsyncWhatsAppClient, bodies: list[str]
) -> list[SentMessage | BaseException]:
    results: list[SentMessage | BaseException] = [RuntimeError("not sent")] * len(bodies)

    async def one(i: int) -> None:
        try:
            results[i] = await wa.send_text(f"+1555{i:07d}", bodies[i])
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(len(bodies)):
            tg.start_soon(one, i)
    return results


async def test_1000_concurrent_sends_after_revocation_mint_once_and_deliver_each_once(
    world: World, store: Any
):
    """1,000 concurrent async sends after a revocation: one mint, 1,000 accepted, no duplicate."""
    world.revoke_current(store)
    bodies = [f"storm {i} {uuid.uuid4().hex}" for i in range(1000)]
    async with AsyncTokenSource.embedded(NAME, world.settings) as tokens:
        assert tokens.current().version == 1
        async with AsyncWhatsAppClient(tokens, world.phone_id, limits=LIMITS) as wa:
            results = await _send_all(wa, bodies)
        assert tokens.current().version == 2
    failed = [r for r in results if not isinstance(r, SentMessage)]
    assert not failed, f"{len(failed)} sends failed, first: {failed[0]!r}"
    assert world.sandbox.mints() == 1
    accepted = world.sandbox.accepted_bodies()
    assert len(accepted) == len(set(accepted)) == 1000
    assert sorted(accepted) == sorted(bodies)
    rejected = [c for c in world.sandbox.calls(SEND) if c["status"] != 200]
    assert rejected and all(c["error_code"] == 190 for c in rejected)
    assert len({r.id for r in results if isinstance(r, SentMessage)}) == 1000
