"""The pure part of a rotation: its steps, its outcomes, what a failure means, what comes next.

Plain functions over plain data: no database, no network, no clock of their own (``now`` is an
argument). The engine (:mod:`.engine`) persists what these functions decide.

    step          persisted when                              next
    (idle)        -                                           obtaining
    obtaining     the lease is held, the issuer is asked      pending
    pending       the new value is stored encrypted           verified
    verified      debug_token (and the canary) accepted it    promoted
    promoted      pending → current, current → previous       (idle)

A failed attempt is classified by :func:`decide_failure`:

    cause                                   status       health                 retry after
    Graph: token dead, permission,          needs_human  needs_human            backoff_cap
      bad request, wrong token kind
    RotationError(needs_human=True)         needs_human  needs_human            backoff_cap
    throttled (Graph or issuer)             deferred     unchanged (by expiry)  retry_delay
    anything else                           failed       failing                retry_delay
    …and the current token already expired: health expired (unless needs_human)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .._exceptions import GraphError, RotationError
from ..events import EventKind
from ..health import assess
from ..issuers import issuer_for
from ..meta.errors import ErrorKind
from ..models import Credential, Health, TokenVersion, VersionMeta
from ..policy import Policy, renewal_due_at, retry_delay


class RotationStep(StrEnum):
    OBTAINING = "obtaining"
    PENDING = "pending"
    VERIFIED = "verified"
    PROMOTED = "promoted"


_ORDER: tuple[RotationStep, ...] = tuple(RotationStep)


def next_step(step: RotationStep | None) -> RotationStep | None:
    """The step after ``step``; ``None`` is idle (before obtaining, after promoted)."""
    if step is None:
        return _ORDER[0]
    i = _ORDER.index(step) + 1
    return _ORDER[i] if i < len(_ORDER) else None


class Outcome(StrEnum):
    """What a call to the engine did (``RotationOutcome.status``)."""

    ROTATED = "rotated"
    ALREADY_ROTATED = "already_rotated"
    NEWER_EXISTS = "newer_exists"
    STILL_VALID = "still_valid"
    DEFERRED = "deferred"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"
    BUSY = "busy"

    @property
    def ok(self) -> bool:
        return self in _OK


_OK = frozenset(
    {Outcome.ROTATED, Outcome.ALREADY_ROTATED, Outcome.NEWER_EXISTS, Outcome.STILL_VALID}
)


@dataclass(frozen=True)
class RotationOutcome:
    """What happened. ``status`` is one of :class:`Outcome`: rotated, already_rotated,
    newer_exists, still_valid, deferred, failed, needs_human, busy (a ``StrEnum``, so it equals
    and serialises as its word)."""

    name: str
    status: Outcome
    version: int | None = None
    previous_version: int | None = None
    expires_at: datetime | None = None
    message: str = ""
    retry_at: datetime | None = None
    health: Health | None = None

    @property
    def ok(self) -> bool:
        return self.status in _OK


#: Graph error kinds no retry can fix: a human must act.
_HUMAN_KINDS = frozenset(
    {ErrorKind.TOKEN_DEAD, ErrorKind.PERMISSION, ErrorKind.BAD_REQUEST, ErrorKind.WRONG_TOKEN_KIND}
)


@dataclass(frozen=True)
class FailureDecision:
    """What a failed obtain attempt means (see the table in the module docstring)."""

    status: Outcome
    kind: str
    message: str
    health: Health
    retry_at: datetime
    needs_human: bool
    #: The message, with the error's hint after a dash: shown as the credential's health reason.
    health_reason: str

    @property
    def event(self) -> EventKind:
        # A throttle is a delay, not a failure: it must not count in failure metrics or notices.
        if self.status is Outcome.DEFERRED:
            return EventKind.ROTATION_DEFERRED
        return EventKind.ROTATION_FAILED


def decide_failure(
    exc: GraphError | RotationError,
    policy: Policy,
    now: datetime,
    *,
    attempt: int,
    current: VersionMeta | None = None,
) -> FailureDecision:
    """Classify a failed attempt number ``attempt``; ``current`` is the meta of the current version."""
    if isinstance(exc, GraphError):
        info = exc.error
        kind = info.kind.value
        retry_after = info.retry_after
        message = info.describe()
        human = info.kind in _HUMAN_KINDS
    else:
        kind = exc.reason or "upstream"
        retry_after = exc.retry_after
        message = exc.message
        human = exc.needs_human
    if human:
        health, status = Health.NEEDS_HUMAN, Outcome.NEEDS_HUMAN
        retry = now + timedelta(seconds=policy.backoff_cap)
    elif kind == "throttled":
        health, status = assess(Health.OK, current, now), Outcome.DEFERRED
        retry = now + timedelta(seconds=retry_delay(policy, attempt, retry_after))
    else:
        health, status = Health.FAILING, Outcome.FAILED
        retry = now + timedelta(seconds=retry_delay(policy, attempt, retry_after))
    if current is not None and current.expires_at is not None and current.expires_at <= now:
        health = Health.EXPIRED if health is not Health.NEEDS_HUMAN else health
    reason = message + (f" — {exc.hint}" if exc.hint else "")
    return FailureDecision(status, kind, message, health, retry, human, reason)


def plan_next(
    policy: Policy,
    current: TokenVersion,
    cred: Credential,
    now: datetime,
    *,
    has_previous: bool = False,
) -> tuple[datetime | None, str | None]:
    """The next thing to do for a credential and when (pure)."""
    candidates: list[tuple[datetime, str]] = []
    meta = current.meta
    automatic = issuer_for(cred.issuer).automatic
    due = renewal_due_at(
        policy,
        issued_at=meta.issued_at,
        expires_at=meta.expires_at,
        created_at=current.created_at,
        jitter_seed=cred.name,
    )
    if due is not None and automatic:
        candidates.append((due, "renew"))
    if meta.expires_at is None or not automatic:
        last = meta.inspected_at or current.created_at
        candidates.append((last + timedelta(seconds=policy.inspect_every), "inspect"))
    if meta.expires_at is not None and not automatic:
        for before in policy.remind_before:
            at = meta.expires_at - timedelta(seconds=before)
            if at > now:
                candidates.append((at, "remind"))
                break
    if has_previous:
        candidates.append((now + timedelta(seconds=policy.grace), "retire"))
    if not candidates:
        return None, None
    at, action = min(candidates)
    return at, action
