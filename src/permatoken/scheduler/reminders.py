"""Reminders and expiry notices for credentials that cannot (or failed to) renew themselves.

What a notice says is :mod:`permatoken.notify.notices` (pure). Here: whether a credential needs
reminders at all, when the scheduler must wake for the next one, and recording the notice due now
in the outbox (:class:`~permatoken.store.notices.Outbox`, idempotent by notice key). Nothing is
sent from here: the deliverer (:mod:`permatoken.notify.delivery`) does that on its own thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._exceptions import NotFoundError
from ..issuers import issuer_for
from ..models import Credential, Health, TokenVersion
from ..notify import notices as nt
from ..notify.delivery import channels_for
from ..policy import Policy, next_reminder_at, reminder_due

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store import Store
    from ..store.notices import Outbox
    from ..timeutil import Clock

__all__ = ["TROUBLED", "Reminders", "current_version"]

#: Health values under which even an automatic credential gets reminders.
TROUBLED = (Health.FAILING, Health.NEEDS_HUMAN, Health.INVALID, Health.EXPIRED)


def current_version(store: Store, name: str) -> TokenVersion | None:
    try:
        return store.version(name)
    except NotFoundError:
        return None


class Reminders:
    """Decides and records reminders and notices for one scheduler (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        outbox: Outbox,
        *,
        clock: Clock,
        events: frozenset[str],
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.clock = clock
        #: The notice events the operator wants (``settings.notify_events``).
        self.events = events

    def needs_reminders(self, cred: Credential) -> bool:
        return not issuer_for(cred.issuer).automatic or cred.health in TROUBLED

    def wake_times(
        self, cred: Credential, current: TokenVersion, policy: Policy, now: datetime
    ) -> list[tuple[datetime, str]]:
        """When the scheduler must wake to remind (``replan``'s ``remind`` candidates)."""
        if not self.needs_reminders(cred):
            return []
        candidates: list[tuple[datetime, str]] = []
        expires_at = current.meta.expires_at
        at = next_reminder_at(policy, expires_at, now)
        if at is not None:
            candidates.append((at, "remind"))
        crossed = reminder_due(policy, expires_at, now)
        if crossed is not None and not self.outbox.already(
            nt.reminder_key(cred.name, current.version, crossed)
        ):
            candidates.append((now, "remind"))
        if expires_at is not None and not self.outbox.already(
            nt.expired_key(cred.name, current.version)
        ):
            # Wake at the expiry itself to say so (the "expired" notice).
            candidates.append((max(expires_at, now), "remind"))
        return candidates

    def remind(self, cred: Credential, policy: Policy) -> bool:
        """Send the reminder due now for a credential that cannot (or failed to) renew itself,
        or say once that it has expired."""
        if not self.needs_reminders(cred):
            return False
        current = current_version(self.store, cred.name)
        if current is None:
            return False
        now = self.clock.now()
        automatic = issuer_for(cred.issuer).automatic
        expires_at = current.meta.expires_at
        if expires_at is not None and expires_at <= now:
            return self.send_expired(cred, current.version, expires_at, now)
        threshold = reminder_due(policy, expires_at, now)
        if threshold is None or expires_at is None:
            return False
        if nt.NoticeEvent.REMINDER.value not in self.events:
            return False
        notice = nt.reminder(
            cred.name,
            cred.tenant,
            current.version,
            expires_at=expires_at,
            threshold=threshold,
            now=now,
            automatic=automatic,
            reason=cred.health_reason if automatic else None,
        )
        return self.send(notice, cred)

    def send_expired(
        self, cred: Credential, version: int, expires_at: datetime, now: datetime
    ) -> bool:
        automatic = issuer_for(cred.issuer).automatic
        notice = nt.expired(
            cred.name, cred.tenant, version, expires_at=expires_at, now=now, automatic=automatic
        )
        return self.send(notice, cred)

    def send(self, notice: nt.Notice, cred: Credential) -> bool:
        """Record ``notice`` for ``cred``'s channels, if the operator wants its kind."""
        if notice.event.value not in self.events:
            return False
        return self.outbox.enqueue(notice, channels_for(self.settings, cred.tenant, cred.options))
