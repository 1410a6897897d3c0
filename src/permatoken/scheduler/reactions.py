"""What an engine event means for the humans: the notices it records.

:class:`Reactions` is the scheduler's listener on the engine's :class:`~permatoken.events.EventBus`.
It runs on the engine's thread and only records notices in the outbox (never sends):

==================== ============================================================================
event                notice
==================== ============================================================================
rotation.failed      ``needs_human``; or ``renewal_failed``, for a blip (transient, unknown,
                     upstream) only from the second attempt on; nothing for a throttle
rotation.completed   ``renewed``; also ``recovered`` when the previous version had trouble
inspected            (current version only) ``expired`` when invalid because expired, else
                     ``token_invalid``; ``recovered`` when valid after a ``token_invalid``
==================== ============================================================================

A batched renewal that already found nothing to notice marks its events ``batched`` (see
:mod:`.batch`); they are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._exceptions import NotFoundError
from ..events import EngineEvent, EventKind
from ..meta.errors import ErrorKind
from ..notify import notices as nt
from .reminders import Reminders, current_version

if TYPE_CHECKING:
    from ..models import Credential
    from ..store import Store
    from ..timeutil import Clock

__all__ = ["Reactions"]

#: Failure kinds that deserve a notice only when they repeat (one blip is not news).
_BLIPS = {ErrorKind.TRANSIENT.value, ErrorKind.UNKNOWN.value, "upstream"}


@dataclass(frozen=True, slots=True)
class _Seen:
    """What a handler needs: the credential as stored now, the event's detail, its current version."""

    cred: Credential
    detail: Mapping[str, Any]
    version: int
    expires: datetime | None
    now: datetime

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cred, self.detail, self.version, self.expires, self.now))


class Reactions:
    """Engine events → notices (see the module docstring)."""

    def __init__(self, store: Store, reminders: Reminders, *, clock: Clock) -> None:
        self.store = store
        self.reminders = reminders
        self.clock = clock

    def __call__(self, event: EngineEvent) -> None:
        if event.detail.get("batched"):
            return  # a batched renewal that already found nothing to notice (see batch.py)
        handler: Callable[[_Seen], None]
        match event.kind:  # the one dispatch: a new kind with notices is one more case
            case EventKind.ROTATION_FAILED:
                handler = self._failed
            case EventKind.ROTATION_COMPLETED:
                handler = self._completed
            case EventKind.INSPECTED:
                handler = self._inspected
            case _:
                return  # no notice for the other kinds
        seen = self._seen(event)
        if seen is not None:
            handler(seen)

    def _seen(self, event: EngineEvent) -> _Seen | None:
        try:
            cred = self.store.get(event.name)
        except NotFoundError:
            return None  # removed since
        current = current_version(self.store, event.name)
        return _Seen(
            cred,
            event.detail,
            current.version if current else 0,
            current.meta.expires_at if current else None,
            self.clock.now(),
        )

    def _failed(self, seen: _Seen) -> None:
        cred, detail, version, expires, now = seen
        name = cred.name
        fkind = str(detail.get("kind") or "")
        if fkind == ErrorKind.THROTTLED.value:
            return  # a throttle is a delay, not a failure
        reason = str(detail.get("reason") or cred.health_reason or "unknown error")
        if detail.get("needs_human"):
            self.reminders.send(
                nt.needs_human(
                    name, cred.tenant, version, reason=reason, expires_at=expires, now=now
                ),
                cred,
            )
        elif fkind not in _BLIPS or int(detail.get("attempt") or 1) >= 2:
            self.reminders.send(
                nt.renewal_failed(
                    name,
                    cred.tenant,
                    version,
                    reason=reason,
                    kind=fkind or None,
                    expires_at=expires,
                    retry_at=cred.next_due_at,
                    now=now,
                ),
                cred,
            )

    def _completed(self, seen: _Seen) -> None:
        cred, detail, version, expires, now = seen
        name, send = cred.name, self.reminders.send
        number = int(detail.get("version") or version)
        prev = detail.get("previous")
        if prev is not None and self.reminders.outbox.has_event(name, int(prev), nt.TROUBLE):
            send(nt.recovered(name, cred.tenant, number, expires_at=expires, now=now), cred)
        send(
            nt.renewed(name, cred.tenant, number, previous=prev, expires_at=expires, now=now),
            cred,
        )

    def _inspected(self, seen: _Seen) -> None:
        cred, detail, version, expires, now = seen
        name, send = cred.name, self.reminders.send
        number = int(detail.get("version") or version)
        if number != version:
            return  # a pending version being verified is not news
        if not detail.get("valid") and expires is not None and expires <= now:
            # Invalid because it expired: the one "expired" notice says it (and says how).
            self.reminders.send_expired(cred, number, expires, now)
        elif not detail.get("valid"):
            send(
                nt.token_invalid(name, cred.tenant, number, verdict=detail.get("verdict"), now=now),
                cred,
            )
        elif self.reminders.outbox.has_event(name, number, [nt.NoticeEvent.TOKEN_INVALID.value]):
            send(nt.recovered(name, cred.tenant, number, expires_at=expires, now=now), cred)
