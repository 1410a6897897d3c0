"""What to tell humans, and the key that makes each notice happen once. Pure: no I/O.

A notice is identified by ``(credential, version, event, threshold)``. The store refuses a
second row with the same key, so whoever inserts first (thread, process, replica, a scheduler
restarted after a crash) is the only one that sends it. Bodies are built from metadata only
(names, versions, dates, Meta's classified reason): never from a token value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..policy import format_duration
from ..timeutil import isoformat


class NoticeEvent(StrEnum):
    REMINDER = "reminder"
    EXPIRED = "expired"
    RENEWAL_FAILED = "renewal_failed"
    NEEDS_HUMAN = "needs_human"
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - an event name
    RECOVERED = "recovered"
    RENEWED = "renewed"
    BACKUP_FAILED = "backup_failed"
    #: Meta announced (webhook or deauthorize callback) that a token died or an account changed.
    ACCOUNT_UPDATE = "account_update"
    SINK_BEHIND = "sink_behind"


#: Sent unless settings say otherwise; ``renewed`` is opt-in (it is good news, and frequent).
DEFAULT_EVENTS = frozenset(e.value for e in NoticeEvent if e is not NoticeEvent.RENEWED)
#: Events after which a later success is worth a "recovered" notice.
TROUBLE = frozenset(
    {
        NoticeEvent.RENEWAL_FAILED,
        NoticeEvent.NEEDS_HUMAN,
        NoticeEvent.TOKEN_INVALID,
        NoticeEvent.EXPIRED,
    }
)

SYSTEM_USER_STEPS = (
    "1. In Meta Business Settings > Users > System users, pick (or add) an admin system user.\n"
    "2. Assign it the WhatsApp Business Account and the app (Assign assets).\n"
    "3. Generate token: choose the app, expiration '60 days' (or 'Never' where allowed), and the\n"
    "   scopes whatsapp_business_messaging and whatsapp_business_management.\n"
    "4. Give it to permatoken without the command line seeing it:\n"
    "   permatoken rotate {name} --token-file FILE   (or pipe it on stdin)\n"
    "5. To let permatoken recover alone next time, give the credential a break-glass mint:\n"
    "   issuer options system_user_id=ID and admin_credential=NAME (docs/notifications.md)."
)


@dataclass(frozen=True, slots=True)
class Notice:
    credential: str
    tenant: str
    version: int
    event: NoticeEvent
    threshold: str
    title: str
    body: str

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.credential, self.version, self.event.value, self.threshold)


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never expires"
    left = (at - now).total_seconds()
    if left <= 0:
        return f"expired at {isoformat(at)}"
    return f"expires at {isoformat(at)} (in {format_duration(round(left))})"


def reminder_key(name: str, version: int, threshold: float) -> tuple[str, int, str, str]:
    return (name, version, NoticeEvent.REMINDER.value, format_duration(threshold))


def reminder(
    name: str,
    tenant: str,
    version: int,
    *,
    expires_at: datetime,
    threshold: float,
    now: datetime,
    automatic: bool,
    reason: str | None = None,
) -> Notice:
    label = format_duration(threshold)
    if automatic:
        why = "permatoken has not managed to renew it yet"
        if reason:
            why += f": {reason}"
        todo = (
            f"Check `permatoken status {name}`; fix the cause above, or supply a new value "
            f"with `permatoken rotate {name} --token-file FILE` before it expires."
        )
    else:
        why = "it is renewed by hand (manual issuer), so permatoken cannot renew it itself"
        todo = (
            f"Get a new token and give it to permatoken: "
            f"`permatoken rotate {name} --token-file FILE`.\n" + SYSTEM_USER_STEPS.format(name=name)
        )
    body = f"Credential {name} version {version} {_when(expires_at, now)}; {why}.\n{todo}"
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.REMINDER,
        label,
        f"[permatoken] {name} expires in {label} or less",
        body,
    )


def expired_key(name: str, version: int) -> tuple[str, int, str, str]:
    return (name, version, NoticeEvent.EXPIRED.value, "")


def expired(
    name: str, tenant: str, version: int, *, expires_at: datetime, now: datetime, automatic: bool
) -> Notice:
    """The token a reminder warned about has now expired: what it means, what to do."""
    why = (
        "permatoken did not manage to renew it in time"
        if automatic
        else "it is renewed by hand (manual issuer) and no new value was given"
    )
    body = (
        f"Credential {name} version {version} {_when(expires_at, now)}; {why}.\n"
        "Applications using it fail from now on, and an expired token can never be renewed: "
        "a new one must be created.\n" + SYSTEM_USER_STEPS.format(name=name)
    )
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.EXPIRED,
        "",
        f"[permatoken] {name} has expired",
        body,
    )


def renewal_failed(
    name: str,
    tenant: str,
    version: int,
    *,
    reason: str,
    kind: str | None,
    expires_at: datetime | None,
    retry_at: datetime | None,
    now: datetime,
) -> Notice:
    retry = f" permatoken retries at {isoformat(retry_at)}." if retry_at else ""
    body = (
        f"Renewing {name} (version {version}, {_when(expires_at, now)}) failed"
        f"{f' ({kind})' if kind else ''}: {reason}.{retry}\n"
        "The current token is kept and still used. If this keeps failing, check the app secret, "
        "the system user's access to the app and WABA, and `permatoken inspect " + name + "`."
    )
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.RENEWAL_FAILED,
        kind or "",
        f"[permatoken] renewing {name} failed",
        body,
    )


def needs_human(
    name: str,
    tenant: str,
    version: int,
    *,
    reason: str,
    expires_at: datetime | None,
    now: datetime,
) -> Notice:
    body = (
        f"{name} (version {version}, {_when(expires_at, now)}) needs a person: {reason}.\n"
        "An expired or revoked token can never be refreshed; a new one must be created.\n"
        + SYSTEM_USER_STEPS.format(name=name)
    )
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.NEEDS_HUMAN,
        "",
        f"[permatoken] {name} needs a human",
        body,
    )


def token_invalid(
    name: str,
    tenant: str,
    version: int,
    *,
    verdict: str | None,
    now: datetime,
) -> Notice:
    body = (
        f"The daily inspection found {name} version {version} invalid: "
        f"{verdict or 'Meta says the token is not valid'} (checked {isoformat(now)}).\n"
        "Tokens die silently when a system user, an app installation or a business asset is "
        "removed, or when someone revokes them. Applications using it are failing now.\n"
        + SYSTEM_USER_STEPS.format(name=name)
    )
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.TOKEN_INVALID,
        "",
        f"[permatoken] {name} is no longer valid",
        body,
    )


def recovered(
    name: str, tenant: str, version: int, *, expires_at: datetime | None, now: datetime
) -> Notice:
    body = f"{name} is healthy again at version {version} ({_when(expires_at, now)})."
    return Notice(
        name, tenant, version, NoticeEvent.RECOVERED, "", f"[permatoken] {name} recovered", body
    )


def renewed(
    name: str,
    tenant: str,
    version: int,
    *,
    previous: int | None,
    expires_at: datetime | None,
    now: datetime,
) -> Notice:
    frm = f" from version {previous}" if previous else ""
    body = f"{name} was renewed{frm} to version {version} ({_when(expires_at, now)})."
    return Notice(
        name, tenant, version, NoticeEvent.RENEWED, "", f"[permatoken] {name} renewed", body
    )


def backup_failed(period: int, *, reason: str, directory: str, now: datetime) -> Notice:
    """A scheduled backup failed; one notice per period (its number is the notice's version)."""
    body = (
        f"The scheduled backup of {isoformat(now)} into {directory} failed: {reason}.\n"
        "The store itself is unaffected, but the last good backup grows older. Fix the cause, "
        "then take one by hand: `permatoken backup --out FILE`; `permatoken backup status` "
        "shows the last good one."
    )
    return Notice(
        BACKUP_NOTICE_NAME,
        BACKUP_NOTICE_NAME.split("/")[0],
        period,
        NoticeEvent.BACKUP_FAILED,
        "",
        "[permatoken] scheduled backup failed",
        body,
    )


def account_update(
    name: str,
    tenant: str,
    version: int,
    *,
    event: str,
    at: datetime,
    what: str,
    todo: str,
    confirmed: str,
) -> Notice:
    """Meta said something happened to the account behind ``name`` (one notice per event)."""
    body = (
        f"Meta announced {event} at {isoformat(at)}: {what}.\n"
        f"Credential {name} (version {version}): {confirmed}.\n{todo}"
    )
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.ACCOUNT_UPDATE,
        f"{event}@{int(at.timestamp())}"[:40],
        f"[permatoken] {name}: {event.replace('_', ' ').lower()}",
        body,
    )


def sink_behind(
    name: str, tenant: str, version: int, *, url: str, uid: str, error: str | None, behind: float
) -> Notice:
    """A sink has not received ``version`` of ``name`` for ``behind`` seconds (once per sink and
    version)."""
    why = f"the last attempt failed: {error}" if error else "no delivery has been attempted yet"
    body = (
        f"Version {version} of {name} became current {format_duration(round(behind))} ago, but the "
        f"sink {url} still holds an older value; {why}.\n"
        "permatoken keeps retrying with back-off. Applications reading that destination get the "
        f"previous token meanwhile. `permatoken sink list {name}` shows the state; docs/aws.md "
        "lists the permissions a Secrets Manager sink needs."
    )
    return Notice(
        name,
        tenant,
        version,
        NoticeEvent.SINK_BEHIND,
        f"sink:{uid}",
        f"[permatoken] sink behind for {name}",
        body,
    )


#: Notices about the store itself (not a credential) are filed under this name.
BACKUP_NOTICE_NAME = "permatoken/backup"

__all__ = [
    "BACKUP_NOTICE_NAME",
    "DEFAULT_EVENTS",
    "TROUBLE",
    "Notice",
    "NoticeEvent",
    "account_update",
    "backup_failed",
    "expired",
    "expired_key",
    "needs_human",
    "recovered",
    "reminder",
    "reminder_key",
    "renewal_failed",
    "renewed",
    "sink_behind",
    "token_invalid",
]
