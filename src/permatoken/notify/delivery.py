"""Recording notices once and delivering them through Apprise, off the renewal path.

Order of work, chosen for *at-least-once* delivery with no duplicates in normal operation:

1. ``Outbox.enqueue`` inserts the notice and one delivery row per channel in one transaction.
   The notice's key (credential, version, event, threshold) is unique: a second insert (another
   replica, a restarted scheduler, a repeated event) does nothing and sends nothing.
2. ``Deliverer`` claims due deliveries (a claim with an expiry, ``SKIP LOCKED`` on PostgreSQL),
   sends each through Apprise, and records ``sent`` or the error with the next attempt time
   (capped exponential back-off), giving up as ``failed`` after ``max_attempts``.

A process that dies between sending and recording leaves the delivery claimed; when the claim
expires another deliverer sends it again. So a crash at that instant can repeat one message,
but no notice is ever lost: for "your token expires tomorrow" a duplicate is the lesser harm.
Delivery runs on its own thread: an unreachable channel never holds up a renewal.

Channel URLs are never stored (they can contain passwords): a delivery row holds a hash of its
URL and a label (scheme and host); the URL is looked up again from the configuration when sent.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .._exceptions import NotFoundError
from .._secret import redact
from ..events import EngineEvent, EventBus, EventKind
from ..settings import Settings
from ..store import Store
from ..store.notices import ClaimedDelivery, Outbox
from ..timeutil import Clock

log = logging.getLogger(__name__)

#: Credential option holding its own channels: a list of Apprise URLs or one comma-separated string.
NOTIFY_OPTION = "notify"

Sender = Callable[[str, str, str], "tuple[bool, str | None]"]


@dataclass(frozen=True)
class Channel:
    url: str

    @property
    def id(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    @property
    def label(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"[:120]


def channels_for(settings: Settings, tenant: str, options: dict[str, Any]) -> list[Channel]:
    """Global, then tenant, then credential channels; each URL once."""
    urls: list[str] = list(settings.notify_urls) + list(settings.tenant_notify_urls.get(tenant, []))
    own = options.get(NOTIFY_OPTION)
    if isinstance(own, str):
        urls += [u.strip() for u in own.split(",") if u.strip()]
    elif isinstance(own, list | tuple):
        urls += [str(u) for u in own]
    seen: dict[str, Channel] = {}
    for url in urls:
        ch = Channel(url)
        seen.setdefault(ch.id, ch)
    return list(seen.values())


def send_apprise(url: str, title: str, body: str) -> tuple[bool, str | None]:
    """One message to one Apprise URL; returns (delivered, error text without the URL)."""
    import apprise

    ap = apprise.Apprise()
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:  # type: ignore[no-untyped-call]
        if not ap.add(url):
            return False, "Apprise does not understand this channel URL"
        ok = bool(ap.notify(title=title, body=body))
        text = captured.getvalue() if hasattr(captured, "getvalue") else ""
    if ok:
        return True, None
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    error = lines[-1] if lines else "delivery failed"
    return False, _scrub_url(error, url)


def _scrub_url(text: str, url: str) -> str:
    parts = urlsplit(url)
    for secret in (url, parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return redact(text)[:500]


# --- the outbox ----------------------------------------------------------------------------


class Deliverer:
    """Sends claimed deliveries through Apprise on a background thread (or ``run_once``)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        owner: str,
        clock: Clock,
        sender: Sender | None = None,
        batch: int = 50,
        claim_ttl: float = 120.0,
        max_attempts: int = 8,
        retry_base: float = 30.0,
        retry_cap: float = 3600.0,
        interval: float = 1.0,
        events: EventBus | None = None,
    ) -> None:
        """``events``: where each attempt's outcome is announced (the broker counts them in
        ``permatoken_notice_deliveries_total``)."""
        self.store = store
        self.events = events
        self.settings = settings
        self.outbox = Outbox(store, owner=owner, clock=clock)
        self.clock = clock
        self.sender: Sender = sender or send_apprise
        self.batch = batch
        self.claim_ttl = claim_ttl
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def retry_delay(self, attempts: int) -> float:
        return float(min(self.retry_cap, self.retry_base * 2 ** max(attempts - 1, 0)))

    def _url_of(self, d: ClaimedDelivery) -> str | None:
        options: dict[str, Any] = {}
        try:
            options = self.store.get(d.credential).options
        except NotFoundError:
            pass
        for ch in channels_for(self.settings, d.tenant, options):
            if ch.id == d.channel:
                return ch.url
        return None

    def run_once(self) -> int:
        """Claim and attempt every due delivery once; returns how many were attempted."""
        return self._pass(lambda: False)

    def _pass(self, stopping: Callable[[], bool]) -> int:
        done = 0
        while not stopping():
            claimed = self.outbox.claim(self.batch, self.claim_ttl)
            if not claimed:
                break
            for d in claimed:
                self._deliver(d)
                done += 1
            if len(claimed) < self.batch:
                break
        return done

    def _deliver(self, d: ClaimedDelivery) -> None:
        url = self._url_of(d)
        if url is None:
            self.outbox.record(
                d, ok=False, error="channel no longer configured", retry_at=None, dropped=True
            )
            self._announce(EventKind.NOTICE_DROPPED, d, attempts=d.attempts, final=True)
            return
        try:
            ok, error = self.sender(url, d.title, d.body)
        except Exception as exc:  # a channel plugin must never take the deliverer down
            ok, error = False, _scrub_url(f"{type(exc).__name__}: {exc}", url)
        attempts = d.attempts + 1
        retry_at = None
        if not ok and attempts < self.max_attempts:
            retry_at = self.clock.now() + timedelta(seconds=self.retry_delay(attempts))
        self.outbox.record(d, ok=ok, error=error, retry_at=retry_at)
        kind = EventKind.NOTICE_DELIVERED if ok else EventKind.NOTICE_FAILED
        self._announce(kind, d, attempts=attempts, final=ok or retry_at is None)
        if ok:
            log.info("notice for %s delivered to %s", d.credential, d.label)
        else:
            log.warning(
                "notice for %s not delivered to %s (attempt %d): %s",
                d.credential,
                d.label,
                attempts,
                error,
            )

    def _announce(self, kind: EventKind, d: ClaimedDelivery, *, attempts: int, final: bool) -> None:
        if self.events is None:
            return
        # The scheme only: a host (or a webhook's path) is configuration, not a metric label.
        channel = d.label.partition("://")[0] or "unknown"
        detail = {"channel": channel, "attempt": attempts, "final": final}
        self.events.emit(EngineEvent(kind, d.credential, detail))

    # --- thread -------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="permatoken-notify", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.store.unavailable() is None:  # a lost database is logged once, there
                    self._pass(self._stop.is_set)
            except Exception:
                log.exception("notice delivery pass failed; retrying")
            self._wake.wait(self.interval)
            self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


__all__ = ["Channel", "ClaimedDelivery", "Deliverer", "Outbox", "channels_for", "send_apprise"]
