"""What Meta's ``account_update`` events and the deauthorize callback mean for our tokens. Pure.

=========================  ===========  ===========================================================
event                      action       what permatoken does
=========================  ===========  ===========================================================
PARTNER_APP_UNINSTALLED    dead         credentials of the WABA / business for this app: ``invalid``
PARTNER_REMOVED            dead         at once, then confirmed (or cleared) with ``debug_token``;
ACCOUNT_DELETED            dead         a notice says what happened and what to do
DEAUTHORIZED               dead         (the deauthorize callback: the user's tokens for the app)
ACCOUNT_OFFBOARDED         suspend      ``needs_human``: the token may work but nothing can be sent
DISABLED_UPDATE            suspend      (``REINSTATE`` re-inspects instead)
PARTNER_APP_INSTALLED      reinspect    ``debug_token`` decides; never trusted blindly
ACCOUNT_RECONNECTED        reinspect
anything else              record       kept in the log, nothing changes
=========================  ===========  ===========================================================

Order is not guaranteed and Meta repeats itself: each change has a key (a hash of the app and
the change as sent), and a "dead"/"suspend" change older than one already handled for the same
WABA (or user) is *stale*: it only re-inspects.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    DEAD = "dead"
    SUSPEND = "suspend"
    REINSPECT = "reinspect"
    RECORD = "record"


DEAUTHORIZED = "DEAUTHORIZED"
_DEAD = {"PARTNER_APP_UNINSTALLED", "PARTNER_REMOVED", "ACCOUNT_DELETED", DEAUTHORIZED}
_REINSPECT = {"PARTNER_APP_INSTALLED", "ACCOUNT_RECONNECTED"}
#: Events that compete by time for one WABA: the newest handled one wins.
LIFECYCLE = frozenset(_DEAD | _REINSPECT | {"ACCOUNT_OFFBOARDED", "DISABLED_UPDATE"})
#: Events about the app's own installation: they concern only credentials of that app.
_APP_SCOPED = {"PARTNER_APP_UNINSTALLED", "PARTNER_APP_INSTALLED", "PARTNER_REMOVED", DEAUTHORIZED}

MEANING = {
    "PARTNER_APP_UNINSTALLED": "the client business removed your app from WhatsApp Business "
    "Account {waba}: the business token it gave your app no longer works",
    "PARTNER_REMOVED": "WhatsApp Business Account {waba} is no longer shared with your "
    "business: tokens lose access to it",
    "ACCOUNT_DELETED": "WhatsApp Business Account {waba} was deleted",
    DEAUTHORIZED: "user {user} removed your app (deauthorize callback): the tokens they "
    "granted no longer work",
    "ACCOUNT_OFFBOARDED": "the phone numbers of WhatsApp Business Account {waba} were "
    "offboarded (moved or re-registered): nothing can be sent until it is reconnected",
    "DISABLED_UPDATE": "Meta disabled WhatsApp Business Account {waba} ({ban}): "
    "messages are refused",
}

TODO = {
    Action.DEAD: "Applications cannot use this credential any more. Ask the client to connect "
    "again through your Embedded Signup flow, then `permatoken onboard embedded-signup "
    "--code-file FILE --tenant TENANT`; or, with a new token, `permatoken rotate {name} "
    "--token-file FILE`. If the client has left, `permatoken remove {name}`.",
    Action.SUSPEND: "The token itself may still be valid, but sends fail. The client must "
    "resolve it with Meta (WhatsApp Manager, Business Support Home); permatoken re-inspects "
    "when Meta announces ACCOUNT_RECONNECTED or a REINSTATE.",
}


@dataclass(frozen=True)
class Change:
    """One recorded change: an ``account_update`` value, or a deauthorize callback."""

    key: str
    source: str  # "webhook" or "deauthorize"
    app_id: str
    event: str
    waba_id: str | None
    business_id: str | None
    user_id: str | None
    time: datetime
    payload: dict[str, Any]


def action_for(event: str, payload: dict[str, Any]) -> Action:
    if event in _DEAD:
        return Action.DEAD
    if event in _REINSPECT:
        return Action.REINSPECT
    if event == "DISABLED_UPDATE":
        return Action.REINSPECT if _ban_state(payload) == "REINSTATE" else Action.SUSPEND
    if event == "ACCOUNT_OFFBOARDED":
        return Action.SUSPEND
    return Action.RECORD


def app_scoped(event: str) -> bool:
    return event in _APP_SCOPED


def meaning(change: Change) -> str:
    text = MEANING.get(change.event, "Meta announced {event} for {waba}")
    return text.format(
        waba=change.waba_id or "?",
        user=change.user_id or "?",
        ban=_ban_state(change.payload) or "DISABLE",
        event=change.event,
    )


def _ban_state(payload: dict[str, Any]) -> str | None:
    info = payload.get("ban_info")
    state = info.get("waba_ban_state") if isinstance(info, dict) else None
    return str(state) if isinstance(state, str) else None


def _digest(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _id(value: Any) -> str | None:
    """A Graph id as Meta sends it (digits), or None: anything else is never used in a query."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isascii() and value.isdigit():
        return value
    return None


def _when(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2**33:
        return datetime.fromtimestamp(int(value), UTC)
    raise ValueError("entry.time is not a Unix time")


class MalformedDelivery(ValueError):
    """A signed body that is not a webhook envelope (400, nothing recorded)."""


def changes_of(envelope: Any, app_id: str) -> list[Change]:
    """The ``account_update`` changes of a verified delivery (other fields are not recorded)."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("entry"), list):
        raise MalformedDelivery("the body is not a webhook envelope with an entry list")
    found: list[Change] = []
    for entry in envelope["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            raise MalformedDelivery("an entry has no changes list")
        try:
            when = _when(entry.get("time"))
        except ValueError as exc:
            raise MalformedDelivery(str(exc)) from None
        for change in entry["changes"]:
            if not isinstance(change, dict):
                raise MalformedDelivery("a change is not an object")
            value = change.get("value")
            if change.get("field") != "account_update" or not isinstance(value, dict):
                continue
            event = value.get("event")
            if not isinstance(event, str) or not (0 < len(event) <= 40):
                raise MalformedDelivery("an account_update has no event name")
            raw_info = value.get("waba_info")
            info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
            waba = _id(info.get("waba_id")) or _id(entry.get("id"))
            found.append(
                Change(
                    key=_digest(app_id, entry.get("id"), entry.get("time"), value),
                    source="webhook",
                    app_id=app_id,
                    event=event,
                    waba_id=waba,
                    business_id=_id(info.get("owner_business_id")),
                    user_id=None,
                    time=when,
                    payload=value,
                )
            )
    return found


def deauthorize_change(app_id: str, payload: dict[str, Any]) -> Change:
    user = payload.get("user_id")
    user_id = str(user) if isinstance(user, str | int) and not isinstance(user, bool) else None
    if user_id is None or not (0 < len(user_id) <= 64) or not user_id.isalnum():
        raise MalformedDelivery("signed_request has no user_id")
    try:
        when = _when(payload.get("issued_at"))
    except ValueError:
        raise MalformedDelivery("signed_request has no issued_at") from None
    return Change(
        key=_digest(app_id, "deauthorize", user_id, payload.get("issued_at")),
        source="deauthorize",
        app_id=app_id,
        event=DEAUTHORIZED,
        waba_id=None,
        business_id=None,
        user_id=user_id,
        time=when,
        payload={k: payload[k] for k in ("algorithm", "issued_at", "user_id") if k in payload},
    )


__all__ = [
    "DEAUTHORIZED",
    "LIFECYCLE",
    "Action",
    "Change",
    "MalformedDelivery",
    "action_for",
    "app_scoped",
    "changes_of",
    "deauthorize_change",
    "meaning",
]
