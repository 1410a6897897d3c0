"""The outbox: Meta's side of webhook deliveries and the deauthorize callback, in the background.

Concurrency contract:

- Deliveries are *created* by :mod:`permatoken.sandbox.signup` under the state lock, which only
  appends them here under the outbox's own condition. Nothing in this module takes the state lock,
  so the outbox lock is a leaf and HTTP never runs under either lock.
- One worker thread sends, one attempt at a time, in the order deliveries were released (so
  ``webhook_reorder`` controls the order a receiver sees; retries reorder naturally, as Meta's do).
  It starts on demand and exits when nothing is due, so an idle sandbox holds no thread.
- :meth:`WebhookOutbox.reset` bumps a generation: an attempt in flight when the world was reset is
  dropped when it returns instead of being written into the new log.

Retries run on real (monotonic) time, not on the sandbox clock, so a frozen clock never stalls
them: after the n-th failure wait ``min(cap, base * 2**(n-1))`` and give up once the next attempt
would fall outside ``webhook_retry_window_seconds`` of the first (see ``docs/sandbox.md``).
"""

from __future__ import annotations

import copy
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from permatoken.sandbox.signing import canonical_json, delivery_headers, retry_delay

if TYPE_CHECKING:
    from permatoken.sandbox.clock import SandboxClock
    from permatoken.sandbox.config import SandboxConfig

#: Delivery states: held (waiting for a reorder batch), pending, delivered, failed (gave up),
#: undeliverable (never sent: no URL configured, or the WABA is not subscribed to the app).
STATUSES = ("held", "pending", "delivered", "failed", "undeliverable")


@dataclass
class Delivery:
    id: int
    kind: str  # "webhook" or "deauthorize"
    event: str
    app_id: str
    waba_id: str | None
    url: str | None
    #: What the log shows: the webhook envelope, or the deauthorize payload before signing.
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    created_at: float
    copy: int = 1
    status: str = "pending"
    reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    first_attempt: float | None = None  # monotonic

    def to_dict(self) -> dict[str, Any]:
        # Body and headers stay out: the log is for humans, the signature is for the receiver.
        return {
            "id": self.id,
            "kind": self.kind,
            "event": self.event,
            "app_id": self.app_id,
            "waba_id": self.waba_id,
            "url": self.url,
            "created_at": self.created_at,
            "copy": self.copy,
            "status": self.status,
            "reason": self.reason,
            "attempts": [dict(a) for a in self.attempts],
            "payload": copy.deepcopy(self.payload),
        }


class WebhookOutbox:
    def __init__(
        self,
        config: Callable[[], SandboxConfig],
        clock: SandboxClock,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._transport = transport
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._log: list[Delivery] = []
        self._held: list[Delivery] = []
        self._queue: list[tuple[float, int, Delivery]] = []
        self._in_flight: Delivery | None = None
        self._generation = 0
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- creating deliveries (callers may hold the state lock) ------------------------------------

    def webhook(
        self,
        *,
        app_id: str,
        app_secret: str,
        event: str,
        waba_id: str,
        url: str | None,
        envelope: dict[str, Any],
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Log one event (twice with ``webhook_duplicates``) and send it unless ``reason``."""
        body = canonical_json(envelope)
        headers = delivery_headers(app_secret, body)
        copies = 2 if self._config().webhook_duplicates and reason is None else 1
        made = [
            self._new("webhook", event, app_id, waba_id, url, envelope, body, headers, n, reason)
            for n in range(1, copies + 1)
        ]
        self._submit(made, reorderable=True)
        return [d.to_dict() for d in made]

    def deauthorize(
        self,
        *,
        app_id: str,
        url: str | None,
        payload: dict[str, Any],
        signed_request: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        body = urlencode({"signed_request": signed_request}).encode()
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": "facebookexternalua",
        }
        made = self._new(
            "deauthorize", "deauthorize", app_id, None, url, payload, body, headers, reason=reason
        )
        self._submit([made], reorderable=False)
        return made.to_dict()

    def _new(
        self,
        kind: str,
        event: str,
        app_id: str,
        waba_id: str | None,
        url: str | None,
        payload: dict[str, Any],
        body: bytes,
        headers: dict[str, str],
        copy: int = 1,
        reason: str | None = None,
    ) -> Delivery:
        with self._cond:
            delivery_id = next(self._ids)
        status = "undeliverable" if reason is not None or url is None else "pending"
        if url is None and reason is None:
            reason = f"no {'webhook_url' if kind == 'webhook' else 'deauthorize_url'} configured"
        return Delivery(
            delivery_id,
            kind,
            event,
            app_id,
            waba_id,
            url,
            payload,
            body,
            headers,
            self._clock.now(),
            copy,
            status,
            reason,
        )

    def _submit(self, deliveries: list[Delivery], *, reorderable: bool) -> None:
        config = self._config()
        with self._cond:
            self._log.extend(deliveries)
            sendable = [d for d in deliveries if d.status == "pending"]
            if reorderable and config.webhook_reorder:
                for delivery in sendable:
                    delivery.status = "held"
                self._held.extend(sendable)
                if len(self._held) >= max(1, config.webhook_reorder_batch):
                    self._release_held()
            else:
                self._enqueue(sendable)

    def flush(self) -> list[dict[str, Any]]:
        """Release held deliveries now, newest first; the released ones."""
        with self._cond:
            released = self._release_held()
            return [d.to_dict() for d in released]

    def _release_held(self) -> list[Delivery]:
        released, self._held = list(reversed(self._held)), []
        for delivery in released:
            delivery.status = "pending"
        self._enqueue(released)
        return released

    def _enqueue(self, deliveries: list[Delivery]) -> None:
        now = time.monotonic()
        for delivery in deliveries:
            heapq.heappush(self._queue, (now, next(self._seq), delivery))
        if deliveries:
            self._cond.notify_all()
            self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._worker is None and not self._closed:
            self._worker = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._worker.start()

    # -- the worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(transport=self._transport) as client:
            while True:
                with self._cond:
                    delivery = self._next_due()
                    if delivery is None:
                        self._worker = None
                        self._cond.notify_all()
                        return
                    self._in_flight, generation = delivery, self._generation
                    if delivery.first_attempt is None:
                        delivery.first_attempt = time.monotonic()
                status, error = self._attempt(client, delivery)
                with self._cond:
                    self._in_flight = None
                    if generation == self._generation:
                        self._record(delivery, status, error)
                    self._cond.notify_all()

    def _next_due(self) -> Delivery | None:
        """The next delivery due, waiting for it; None when nothing is queued (or closed)."""
        while not self._closed and self._queue:
            wait = self._queue[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._queue)[2]
            self._cond.wait(wait)
        return None

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> tuple[int | None, str | None]:
        assert delivery.url is not None  # undeliverable ones are never queued
        try:
            response = client.post(
                delivery.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=self._config().webhook_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            # The class name only: an exception's text may quote the URL or the body.
            return None, type(exc).__name__
        return response.status_code, None

    def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        delivery.attempts.append({"at": self._clock.now(), "status_code": status, "error": error})
        if status == 200:
            delivery.status = "delivered"
            return
        config = self._config()
        delay = retry_delay(
            len(delivery.attempts),
            config.webhook_retry_base_seconds,
            config.webhook_retry_cap_seconds,
        )
        now = time.monotonic()
        assert delivery.first_attempt is not None
        if now + delay - delivery.first_attempt > config.webhook_retry_window_seconds:
            delivery.status = "failed"
            delivery.reason = f"gave up after {len(delivery.attempts)} attempts"
            return
        heapq.heappush(self._queue, (now + delay, next(self._seq), delivery))

    # -- reading and lifecycle --------------------------------------------------------------------

    def log(self) -> list[dict[str, Any]]:
        with self._cond:
            return [d.to_dict() for d in self._log]

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
        """Wait until ``predicate(log)`` holds; re-checked after every attempt is recorded."""
        with self._cond:
            return self._cond.wait_for(
                lambda: predicate([d.to_dict() for d in self._log]), timeout=timeout
            )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight (held deliveries do not count)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and self._in_flight is None, timeout=timeout
            )

    def reset(self) -> None:
        """Forget the log and everything queued or held; an attempt in flight is dropped."""
        with self._cond:
            self._log.clear()
            self._held.clear()
            self._queue.clear()
            self._generation += 1
            self._cond.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Stop sending (queued deliveries stay pending) and wait for the worker to exit."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
