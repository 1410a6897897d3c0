"""The staged rotation itself: obtain, store as pending, verify, promote, finalize.

Each step is persisted (``rotation_step`` and ``rotation_detail`` on the credential row, written
only while the lease is held) before the next one starts, so a process that dies anywhere leaves
a step that whoever takes the lease next resumes with :meth:`StagedRotation._resume`. What the
steps are and what a failure means is decided in :mod:`.steps`; this module does the I/O.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from .._exceptions import GraphError, NotFoundError, RotationError
from .._secret import Secret
from ..events import EventBus, EventKind
from ..health import assess
from ..issuers import IssueContext, Obtained, issuer_for
from ..issuers.checks import check_obtained
from ..meta.errors import ErrorKind
from ..meta.graph import GraphClient
from ..models import (
    Credential,
    Health,
    TokenVersion,
    VersionMeta,
    VersionState,
    token_problem_sentence,
    token_value_problem,
)
from ..policy import Policy, backoff, retry_delay
from ..store import Store
from ..timeutil import Clock, isoformat
from .steps import (
    Outcome,
    RotationOutcome,
    RotationStep,
    decide_failure,
    next_step,
    plan_next,
)

if TYPE_CHECKING:
    from .inspection import Inspection

log = logging.getLogger("permatoken.rotation")

#: Opt-in fault injection for crash tests: the process SIGKILLs itself right after persisting
#: the named step ("obtaining", "pending", "verified", "promoted", "finalized").
CRASH_ENV = "PERMATOKEN_CRASH_AT"


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class StagedRotation:
    """Mixed into :class:`~permatoken.rotation.engine.RenewalEngine`; call with the lease held."""

    store: Store
    graph: GraphClient
    http: httpx.Client
    clock: Clock
    owner: str
    lease_ttl: float
    events: EventBus

    if TYPE_CHECKING:

        def policy_for(self, cred: Credential) -> Policy: ...

        def inspect(
            self, name: str, *, version: int | None = None, canary: bool | None = None
        ) -> Inspection: ...

        def _current(self, name: str) -> TokenVersion | None: ...

        def issue_context(
            self, cred: Credential, current: TokenVersion | None, *, dead: bool
        ) -> IssueContext: ...

        def _holder(self, name: str) -> Callable[[Secret], str | None]: ...

        def emit(self, kind: EventKind, name: str, detail: dict[str, Any]) -> None: ...

    def _run(
        self,
        cred: Credential,
        current: TokenVersion | None,
        *,
        reason: str,
        value: Secret | None,
        token_dead: bool,
    ) -> RotationOutcome:
        name = cred.name
        attempt = int((self._detail(name) or {}).get("attempt", 0)) + 1
        detail: dict[str, Any] = {
            "attempt": attempt,
            "reason": reason,
            "from_version": current.version if current else None,
        }
        self.store.set_rotation(
            name,
            self.owner,
            RotationStep.OBTAINING,
            detail,
            ttl=self.lease_ttl,
            health=Health.RENEWING,
        )
        self.emit(EventKind.ROTATION_STARTED, name, {"reason": reason, "attempt": attempt})
        _crash_point(RotationStep.OBTAINING)
        issuer = issuer_for(cred.issuer)
        try:
            if value is not None:
                obtained = Obtained(value, old_stays_valid=True)
            else:
                try:
                    obtained = issuer.obtain(self.issue_context(cred, current, dead=token_dead))
                except GraphError as exc:
                    # The current token turned out dead during the call: retry once on the dead path.
                    if (
                        exc.error.kind is ErrorKind.TOKEN_DEAD
                        and not token_dead
                        and not issuer.recovers_dead
                    ):
                        self.confirm_dead(cred, exc)
                        obtained = issuer.obtain(self.issue_context(cred, current, dead=True))
                    else:
                        raise
            check_obtained(name, obtained, now=self.clock.now(), in_use=self._holder(name))
        except (GraphError, RotationError) as exc:
            return self.record_failure(cred, current, exc, attempt)
        meta = VersionMeta(
            token_type=obtained.token_type,
            expires_at=obtained.expires_at if obtained.expiry_known else None,
        )
        pending = self.store.add_pending(
            name,
            obtained.token,
            meta,
            companions=obtained.companions,
            secrets=obtained.secret_updates,
        )
        detail |= {
            "version": pending.version,
            "old_stays_valid": obtained.old_stays_valid,
            "expiry_known": obtained.expiry_known,
        }
        self._advance(name, RotationStep.OBTAINING, detail)
        return self._resume(self.store.get(name))

    def _advance(
        self, name: str, step: RotationStep, detail: dict[str, Any], *, crash: bool = True
    ) -> RotationStep:
        """Persist the step after ``step`` (fenced by the lease); returns it."""
        new = next_step(step)
        assert new is not None, "promoted is finished with _finalize, not advanced"
        self.store.set_rotation(name, self.owner, new, detail, ttl=self.lease_ttl)
        if crash:
            _crash_point(new)
        return new

    def confirm_dead(self, cred: Credential, exc: GraphError) -> None:
        """A 190 from the exchange is not proof: ask debug_token before calling a token dead.

        Returns if Meta confirms (or nothing can ask); raises a plain failed attempt otherwise.
        """
        if not (issuer_for(cred.issuer).meta and cred.app_id):
            return
        said = exc.error.describe()
        try:
            insp = self.inspect(cred.name)
        except GraphError as check:
            raise RotationError(
                f"{cred.name}: Meta answered {said}, and debug_token could not confirm the token "
                f"is dead ({check.error.describe()}); retried with back-off",
                name=cred.name,
                reason="unconfirmed_dead",
            ) from exc
        if insp.result.is_valid and insp.canary_ok is not False:
            raise RotationError(
                f"{cred.name}: Meta answered {said}, but debug_token says the token is valid: "
                "a failed attempt, not a dead token; retried with back-off",
                name=cred.name,
                reason="unconfirmed_dead",
            ) from exc

    def _resume(self, cred: Credential) -> RotationOutcome:
        """Continue an unfinished rotation from its last persisted step."""
        name = cred.name
        detail = dict(self._detail(name) or {})
        step = RotationStep(cred.rotation_step) if cred.rotation_step else None
        if step is RotationStep.OBTAINING:
            pending = self._pending(name)
            if pending is None:
                # Died before the value was stored: nothing to keep, start the attempt over.
                self.store.set_rotation(
                    name, self.owner, None, {"attempt": detail.get("attempt", 1)}
                )
                return self._run(
                    self.store.get(name),
                    self._current(name),
                    reason=str(detail.get("reason", "resume")),
                    value=None,
                    token_dead=False,
                )
            detail["version"] = pending.version
            step = self._advance(name, step, detail, crash=False)
        if "version" not in detail:
            # Detail lost or written by an older version: the database still knows the version.
            found = (
                self._pending(name)
                if step in (RotationStep.PENDING, RotationStep.VERIFIED)
                else self._current(name)
            )
            if found is None:
                self.store.set_rotation(
                    name, self.owner, None, {"attempt": detail.get("attempt", 1)}
                )
                return RotationOutcome(
                    name,
                    Outcome.FAILED,
                    message="unfinished rotation had no version to resume; cleared",
                )
            detail["version"] = found.version
        number = int(detail["version"])
        if step is RotationStep.PENDING:
            # A value stored by an older permatoken without the checks: refuse it here, before
            # it reaches Meta (a 100 KB token cannot even be put in a URL).
            problem = token_value_problem(self.store.reveal(name, number).reveal())
            if problem is not None:
                return self.refuse_pending(
                    cred, number, detail, token_problem_sentence("the stored value", problem)
                )
            failure = self._verify(cred, number, detail)
            if failure is not None:
                return failure
            step = self._advance(name, step, detail)
        if step is RotationStep.VERIFIED:
            self.store.promote(name, number)
            self._advance(name, step, detail)
        return self._finalize(self.store.get(name), number, detail)

    def _verify(
        self, cred: Credential, number: int, detail: dict[str, Any]
    ) -> RotationOutcome | None:
        name = cred.name
        issuer = issuer_for(cred.issuer)
        if not (issuer.meta and cred.app_id):
            return None  # nothing upstream can vouch for it; keep the issuer's facts
        try:
            insp: Inspection | None = self.inspect(name, version=number)
        except GraphError as exc:
            if exc.error.kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT, ErrorKind.UNKNOWN):
                # Could not ask: leave the step at pending so the next attempt verifies again.
                # Each postponed verification counts as an attempt: the wait grows.
                detail["attempt"] = int(detail.get("attempt", 1)) + 1
                retry = self.clock.now() + timedelta(
                    seconds=retry_delay(
                        self.policy_for(cred), detail["attempt"], exc.error.retry_after
                    )
                )
                self.store.set_rotation(
                    name,
                    self.owner,
                    RotationStep.PENDING,
                    detail,
                    next_due_at=retry,
                    next_action="renew",
                )
                return RotationOutcome(
                    name,
                    Outcome.DEFERRED,
                    message=f"verification postponed: {exc.error.describe()}",
                    retry_at=retry,
                )
            insp = None
            why = exc.error.describe()
        else:
            assert insp is not None
            why = insp.verdict.summary
        if insp is not None and insp.result.is_valid and insp.canary_ok is not False:
            if cred.app_id and insp.result.app_id and insp.result.app_id != cred.app_id:
                why = f"the new token belongs to app {insp.result.app_id}, not {cred.app_id}"
            else:
                return None
        return self.refuse_pending(cred, number, detail, why)

    def refuse_pending(
        self, cred: Credential, number: int, detail: dict[str, Any], why: str
    ) -> RotationOutcome:
        """The pending version is not usable: retire it, keep the current one, retry later."""
        name = cred.name
        self.store.set_version_state(
            name, number, VersionState.RETIRED, reason=f"failed verification: {why}"
        )
        policy = self.policy_for(cred)
        retry = self.clock.now() + timedelta(seconds=backoff(policy, int(detail.get("attempt", 1))))
        self.store.set_rotation(
            name,
            self.owner,
            None,
            {"attempt": detail.get("attempt", 1), "last_error": why},
            health=Health.FAILING,
            health_reason=f"new token failed verification: {why}",
            next_due_at=retry,
            next_action="renew",
        )
        self.emit(EventKind.ROTATION_FAILED, name, {"step": "verify", "reason": why})
        log.warning(
            "%s: the new token failed verification (%s); version %s stays current",
            name,
            why,
            detail.get("from_version"),
        )
        return RotationOutcome(
            name,
            Outcome.FAILED,
            message=f"new token failed verification: {why}; the current version is kept",
            retry_at=retry,
            health=Health.FAILING,
        )

    def _finalize(self, cred: Credential, number: int, detail: dict[str, Any]) -> RotationOutcome:
        name = cred.name
        new = self.store.version(name, number)
        prev = detail.get("from_version")
        if prev is not None and not detail.get("old_stays_valid", True):
            with contextlib.suppress(NotFoundError):
                if self.store.version(name, prev).state is VersionState.PREVIOUS:
                    self.store.set_version_state(
                        name, prev, VersionState.RETIRED, reason="the issuer invalidated it"
                    )
        now = self.clock.now()
        policy = self.policy_for(cred)
        due, action = plan_next(
            policy,
            new,
            cred,
            now,
            has_previous=prev is not None and detail.get("old_stays_valid", True),
        )
        health = assess(Health.OK, new.meta, now)
        self.store.set_rotation(
            name,
            self.owner,
            None,
            None,
            health=health,
            health_reason=None,
            next_due_at=due,
            next_action=action,
        )
        _crash_point("finalized")
        self.emit(EventKind.ROTATION_COMPLETED, name, {"version": number, "previous": prev})
        log.info(
            "%s: renewed, now version %d, expires %s",
            name,
            number,
            isoformat(new.meta.expires_at) or "never",
        )
        self.events.promoted(name, number)
        return RotationOutcome(
            name,
            Outcome.ROTATED,
            number,
            prev,
            new.meta.expires_at,
            message=f"now at version {number}",
            health=health,
        )

    def record_failure(
        self,
        cred: Credential,
        current: TokenVersion | None,
        exc: GraphError | RotationError,
        attempt: int,
    ) -> RotationOutcome:
        name = cred.name
        decision = decide_failure(
            exc,
            self.policy_for(cred),
            self.clock.now(),
            attempt=attempt,
            current=current.meta if current else None,
        )
        detail = {"attempt": attempt, "last_error": decision.message, "kind": decision.kind}
        self.store.set_rotation(
            name,
            self.owner,
            None,
            detail,
            health=decision.health,
            health_reason=decision.health_reason,
            next_due_at=decision.retry_at,
            next_action="renew",
        )
        self.emit(
            decision.event,
            name,
            {
                "step": "obtain",
                "kind": decision.kind,
                "reason": decision.message,
                "attempt": attempt,
                "needs_human": decision.needs_human,
            },
        )
        log.warning(
            "%s: renewal %s (%s): %s; next attempt %s",
            name,
            decision.status,
            decision.kind,
            decision.message,
            isoformat(decision.retry_at),
        )
        return RotationOutcome(
            name,
            decision.status,
            current.version if current else None,
            message=decision.message,
            retry_at=decision.retry_at,
            health=decision.health,
        )

    def _pending(self, name: str) -> TokenVersion | None:
        try:
            return self.store.version(name, state=VersionState.PENDING)
        except NotFoundError:
            return None

    def _detail(self, name: str) -> dict[str, Any] | None:
        return self.store.rotation_detail(name)
