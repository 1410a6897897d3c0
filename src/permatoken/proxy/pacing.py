"""Pacing of Cloud API sends per phone number, shared by every client of this proxy.

Meta answers 130429 past about 80 messages per second per business number (reference 3.7). The
proxy books each ``POST /{phone-number-id}/messages`` a turn with the SDK's
:class:`~permatoken.client.RateLimiter` (same algorithm, same margin) and holds the request until
then. The queue is bounded in time: a send whose turn is more than ``max_wait`` seconds away is
answered at once the way Meta answers a 130429 (HTTP 429, code 130429, ``Retry-After``), so a
library backs off as it already does, instead of timing out while it waits here. A request whose
client hangs up while it waits is never sent (its caller may already be retrying).

Pacing is per process: replicas behind a load balancer each pace their own share.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from ..client.ratelimit import RateLimiter
from .errors import Refusal, refuse


class ClientGone(Exception):
    """The client disconnected while its request waited for its turn."""


class Pacer:
    def __init__(self, per_second: float, max_wait: float) -> None:
        self.limiter = RateLimiter(per_second)
        self.max_wait = max_wait
        #: Sends waiting for their turn right now (the queue-depth gauge).
        self.waiting = 0

    async def turn(self, phone: str, disconnected: Callable[[], Awaitable[Any]] | None) -> float:
        """Wait for ``phone``'s next turn; the seconds waited. Refuses past ``max_wait``."""
        delay = self.limiter.try_reserve(phone, self.max_wait)
        if delay is None:
            retry = max(1, math.ceil(self.max_wait))
            raise refuse(
                Refusal.PACED,
                f"rate limit hit: sends for phone number {phone} are queued more than "
                f"{self.max_wait:g} s ahead at {self.limiter.per_second:g}/s; retry later",
                headers={"retry-after": str(retry)},
                error_data={
                    "messaging_product": "whatsapp",
                    "details": "permatoken paces sends below Meta's throughput limit",
                },
            )
        if delay <= 0:
            return 0.0
        self.waiting += 1
        try:
            await _sleep_unless_gone(delay, disconnected)
        finally:
            self.waiting -= 1
        return delay


async def _sleep_unless_gone(
    delay: float, disconnected: Callable[[], Awaitable[Any]] | None
) -> None:
    if disconnected is None:
        await asyncio.sleep(delay)
        return
    sleeper = asyncio.ensure_future(asyncio.sleep(delay))
    watcher = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, watcher):
            task.cancel()
    if watcher in done and not watcher.cancelled() and watcher.exception() is None:
        raise ClientGone


__all__ = ["ClientGone", "Pacer"]
