"""Reminders and failure notices: what to say (:mod:`.notices`, pure) and delivering it once
through Apprise (:mod:`.delivery`). See docs/notifications.md."""

from .delivery import Channel, Deliverer, Outbox, channels_for, send_apprise
from .notices import DEFAULT_EVENTS, Notice, NoticeEvent

__all__ = [
    "DEFAULT_EVENTS",
    "Channel",
    "Deliverer",
    "Notice",
    "NoticeEvent",
    "Outbox",
    "channels_for",
    "send_apprise",
]
