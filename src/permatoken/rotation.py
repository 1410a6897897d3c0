"""The staged, crash-safe rotation state machine and token inspection.

A rotation moves through persisted steps, each idempotent and resumable::

    (idle) → obtaining → pending → verified → promoted → (idle)

- ``obtaining``: the lease is held and the issuer is asked for a new value.
- ``pending``: the new value is stored encrypted as a ``pending`` version, before any other use.
- ``verified``: Meta's ``debug_token`` (and an optional canary call) accepted the new value.
- ``promoted``: ``pending`` became ``current`` and ``current`` became ``previous`` atomically.

A process that dies at any step leaves the step on the credential row; whoever takes the lease
next (after it expires) resumes from there. The previous version stays usable through the grace
period (:meth:`RenewalEngine.retire_previous`). Exactly one rotation per credential runs at a
time: an in-process lock per credential plus a lease in the database across processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx

from ._exceptions import GraphError, InputError, NotFoundError, PermatokenError, RotationError
from ._secret import Secret, redact
from .health import assess
from .issuers import IssueContext, Obtained, issuer_for
from .issuers.checks import check_obtained
from .meta.debug import DebugTokenResult, Verdict, verdict
from .meta.errors import ErrorKind
from .meta.graph import GraphClient
from .models import (
    Credential,
    Health,
    TokenVersion,
    VersionMeta,
    VersionState,
    token_problem_sentence,
    token_value_problem,
)
from .policy import Policy, backoff, renewal_due_at, resolve, retry_delay
from .references import guarded_reveal
from .store import Store
from .timeutil import Clock, SystemClock, isoformat

log = logging.getLogger(__name__)

#: Opt-in fault injection for crash tests: the process SIGKILLs itself right after persisting
#: the named step ("obtaining", "pending", "verified", "promoted", "finalized").
CRASH_ENV = "PERMATOKEN_CRASH_AT"


class RotationStep(StrEnum):
    OBTAINING = "obtaining"
    PENDING = "pending"
    VERIFIED = "verified"
    PROMOTED = "promoted"


@dataclass(frozen=True)
class RotationOutcome:
    """What happened. ``status`` is one of: rotated, already_rotated, newer_exists,
    still_valid, deferred, failed, needs_human, busy."""

    name: str
    status: str
    version: int | None = None
    previous_version: int | None = None
    expires_at: datetime | None = None
    message: str = ""
    retry_at: datetime | None = None
    health: Health | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("rotated", "already_rotated", "newer_exists", "still_valid")


@dataclass(frozen=True)
class Inspection:
    result: DebugTokenResult
    verdict: Verdict
    health: Health
    canary_ok: bool | None = None


def meta_from_debug(result: DebugTokenResult, *, now: datetime, summary: str | None) -> VersionMeta:
    return VersionMeta(
        token_type=result.type,
        issued_at=result.issued_at,
        expires_at=result.expires_at,
        data_access_expires_at=result.data_access_expires_at,
        scopes=tuple(result.scopes),
        waba_ids=tuple(result.waba_ids),
        user_id=result.user_id,
        is_valid=result.is_valid,
        verdict=summary,
        inspected_at=now,
    )


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class RenewalEngine:
    """Inspects and rotates credentials of one store. Thread-safe; one per process is enough."""

    def __init__(
        self,
        store: Store,
        graph: GraphClient,
        *,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        lease_ttl: float = 120.0,
        wait_timeout: float = 90.0,
        policy: Policy | None = None,
        global_policy: dict[str, Any] | None = None,
        policy_resolver: Callable[[Credential], Policy] | None = None,
        rotated_recently: float = 60.0,
    ) -> None:
        self.store = store
        self.graph = graph
        self.http = http or httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0))
        self.clock: Clock = clock or store.clock or SystemClock()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ttl = lease_ttl
        self.wait_timeout = wait_timeout
        #: Without ``--force``, a rotation promoted this many seconds ago is the one asked for.
        self.rotated_recently = rotated_recently
        self.global_policy = global_policy or {}
        self._fixed_policy = policy
        #: Resolves the effective policy (global, tenant and credential layers); see service.build_engine.
        self.policy_resolver = policy_resolver
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        #: Called with (name, version) after every promotion (in-process subscribers).
        self.on_promote: list[Callable[[str, int], None]] = []
        #: Called with (event kind, name, detail) for notifications and metrics.
        self.on_event: list[Callable[[str, str, dict[str, Any]], None]] = []

    def __repr__(self) -> str:
        return f"RenewalEngine(owner={self.owner!r})"

    def close(self) -> None:
        self.http.close()
        self.graph.close()

    # --- policy -------------------------------------------------------------------
    def policy_for(self, cred: Credential) -> Policy:
        if self._fixed_policy is not None:
            return self._fixed_policy
        if self.policy_resolver is not None:
            return self.policy_resolver(cred)
        return resolve(self.global_policy, cred.policy)

    # --- locking ------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the in-process lock and the database lease on ``name``; yields False if busy.

        Raises NotFoundError for an unknown name (there is no row to lease; waiting is useless).
        """
        self.store.get(name)
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=self.wait_timeout if wait else 0):
            yield False
            return
        try:
            deadline = time.monotonic() + (self.wait_timeout if wait else 0)
            delay = 0.02
            while not self.store.acquire_lease(name, self.owner, self.lease_ttl):
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
            try:
                yield True
            finally:
                self.store.release_lease(name, self.owner)
        finally:
            lock.release()

    # --- inspection ---------------------------------------------------------------
    def inspect_value(self, token: Secret, app_id: str) -> DebugTokenResult:
        """debug_token for a value that is not stored (``permatoken inspect``)."""
        return self.graph.debug_token(
            token, app_id=app_id, app_secret=self.store.app_secret(app_id)
        )

    def describe(self, result: DebugTokenResult, cred: Credential | None = None) -> Verdict:
        renew_from = None
        if cred is not None and result.is_valid and result.expires_at is not None:
            renew_from = renewal_due_at(
                self.policy_for(cred),
                issued_at=result.issued_at,
                expires_at=result.expires_at,
                created_at=self.clock.now(),
                jitter_seed=cred.name,
            )
        return verdict(result, now=self.clock.now(), renew_from=renew_from)

    def inspect(
        self, name: str, *, version: int | None = None, canary: bool | None = None
    ) -> Inspection:
        """Ask Meta about a stored version (current by default); store what it says."""
        cred = self.store.get(name)
        if not cred.app_id:
            raise InputError(
                f"{name}: inspection needs the Meta app (debug_token is called with the app token)",
                hint="register it: `permatoken app add APP_ID --secret-file FILE`, then `permatoken update NAME --app-id APP_ID`",
                name=name,
            )
        v = self.store.version(name, version)
        token = self.store.reveal(name, v.version)
        now = self.clock.now()
        result = self.graph.debug_token(
            token, app_id=cred.app_id, app_secret=self.store.app_secret(cred.app_id)
        )
        said = self.describe(result, cred)
        canary_ok = None
        if result.is_valid and (canary if canary is not None else bool(cred.options.get("canary"))):
            canary_ok = self._canary(cred, token)
        self.store.update_version_meta(
            name, v.version, meta_from_debug(result, now=now, summary=said.summary)
        )
        if v.state is VersionState.CURRENT:
            health = self._health_after_inspection(result, now, canary_ok)
            fields: dict[str, Any] = {
                "health": health,
                "health_reason": None if health in (Health.OK, Health.EXPIRING) else said.summary,
            }
            self.store.update_credential(name, **fields)
        else:
            health = Health.OK if result.is_valid else Health.INVALID
        self._event(
            "inspected",
            name,
            {
                "version": v.version,
                "valid": result.is_valid,
                "verdict": said.summary,
                "health": health.value,
            },
        )
        return Inspection(result, said, health, canary_ok)

    def _health_after_inspection(
        self, result: DebugTokenResult, now: datetime, canary_ok: bool | None
    ) -> Health:
        if not result.is_valid or canary_ok is False:
            return Health.INVALID
        return assess(Health.OK, VersionMeta(expires_at=result.expires_at, is_valid=True), now)

    def _canary(self, cred: Credential, token: Secret) -> bool:
        app_secret = self.store.app_secret(cred.app_id) if cred.app_id else None
        try:
            if cred.phone_number_id:
                self.graph.get_phone_number(cred.phone_number_id, token, app_secret)
            elif cred.waba_ids:
                self.graph.list_phone_numbers(cred.waba_ids[0], token, app_secret)
            else:
                return True
        except GraphError as exc:
            return (
                exc.error.kind is not ErrorKind.TOKEN_DEAD
                and exc.error.kind is not ErrorKind.PERMISSION
            )
        return True

    # --- rotation -----------------------------------------------------------------
    def rotate(
        self,
        name: str,
        *,
        force: bool = False,
        expected_version: int | None = None,
        reason: str = "manual",
        value: Secret | None = None,
        wait: bool = True,
    ) -> RotationOutcome:
        """Rotate ``name`` now, or finish a rotation in progress.

        ``expected_version`` is the current version the caller saw: if another worker rotated
        past it while we waited for the lease, nothing more is done (unless ``force``).
        ``value`` supplies the new token by hand (the manual issuer's path).
        """
        debounce = expected_version is None and not force and value is None
        if expected_version is None:
            with contextlib.suppress(NotFoundError):
                expected_version = self.store.version(name).version
        with self._exclusive(name, wait=wait) as held:
            if not held:
                return RotationOutcome(
                    name, "busy", message="another worker holds the lease; try again later"
                )
            if debounce:
                # A caller that started just after another worker finished reads the new version
                # as "expected" and would rotate again: a second refresh for one request.
                just = self._just_rotated(name)
                if just is not None:
                    return just
            return self._rotate_locked(
                name, force=force, expected_version=expected_version, reason=reason, value=value
            )

    def _just_rotated(self, name: str) -> RotationOutcome | None:
        """``already_rotated`` if a rotation promoted the current version moments ago."""
        cred = self.store.get(name)
        current = self._current(name)
        if cred.rotation_step or current is None or current.version == 1:
            return None
        age = (self.clock.now() - current.state_changed_at).total_seconds()
        if age > self.rotated_recently:
            return None
        return RotationOutcome(
            name,
            "already_rotated",
            current.version,
            expires_at=current.meta.expires_at,
            message=f"version {current.version} was promoted {max(age, 0):.0f} s ago; "
            "use --force to rotate again",
        )

    def _rotate_locked(
        self,
        name: str,
        *,
        force: bool,
        expected_version: int | None,
        reason: str,
        value: Secret | None = None,
        token_dead: bool = False,
    ) -> RotationOutcome:
        cred = self.store.get(name)
        if cred.rotation_step:
            return self._resume(cred)
        current = self._current(name)
        if (
            not force
            and value is None
            and expected_version is not None
            and current is not None
            and current.version != expected_version
        ):
            return RotationOutcome(
                name,
                "already_rotated",
                current.version,
                expires_at=current.meta.expires_at,
                message=f"another worker already rotated to version {current.version}",
            )
        return self._run(cred, current, reason=reason, value=value, token_dead=token_dead)

    def _current(self, name: str) -> TokenVersion | None:
        try:
            return self.store.version(name)
        except NotFoundError:
            return None

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
        self._event("rotation.started", name, {"reason": reason, "attempt": attempt})
        _crash_point(RotationStep.OBTAINING)
        issuer = issuer_for(cred.issuer)
        try:
            if value is not None:
                obtained = Obtained(value, old_stays_valid=True)
            else:
                try:
                    obtained = issuer.obtain(self._context(cred, current, dead=token_dead))
                except GraphError as exc:
                    # The current token turned out dead during the call: retry once on the dead path.
                    if (
                        exc.error.kind is ErrorKind.TOKEN_DEAD
                        and not token_dead
                        and not issuer.recovers_dead
                    ):
                        self._confirm_dead(cred, exc)
                        obtained = issuer.obtain(self._context(cred, current, dead=True))
                    else:
                        raise
            check_obtained(name, obtained, now=self.clock.now(), in_use=self._holder(name))
        except (GraphError, RotationError) as exc:
            return self._failed(cred, current, exc, attempt)
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
        self.store.set_rotation(name, self.owner, RotationStep.PENDING, detail, ttl=self.lease_ttl)
        _crash_point(RotationStep.PENDING)
        return self._resume(self.store.get(name))

    def _confirm_dead(self, cred: Credential, exc: GraphError) -> None:
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

    def _holder(self, name: str) -> Callable[[Secret], str | None]:
        """``in_use`` for :func:`check_obtained`: by fingerprint, decrypting only matches."""

        def in_use(value: Secret) -> str | None:
            for other, number in self.store.live_versions_with_fingerprint(value.fingerprint):
                if self.store.reveal(other, number) == value:
                    return f"version {number}" if other == name else "another credential"
            return None

        return in_use

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
            self.store.set_rotation(
                name, self.owner, RotationStep.PENDING, detail, ttl=self.lease_ttl
            )
            step = RotationStep.PENDING
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
                    name, "failed", message="unfinished rotation had no version to resume; cleared"
                )
            detail["version"] = found.version
        number = int(detail["version"])
        if step is RotationStep.PENDING:
            # A value stored by an older permatoken without the checks: refuse it here, before
            # it reaches Meta (a 100 KB token cannot even be put in a URL).
            problem = token_value_problem(self.store.reveal(name, number).reveal())
            if problem is not None:
                return self._refused(
                    cred, number, detail, token_problem_sentence("the stored value", problem)
                )
            failure = self._verify(cred, number, detail)
            if failure is not None:
                return failure
            self.store.set_rotation(
                name, self.owner, RotationStep.VERIFIED, detail, ttl=self.lease_ttl
            )
            _crash_point(RotationStep.VERIFIED)
            step = RotationStep.VERIFIED
        if step is RotationStep.VERIFIED:
            self.store.promote(name, number)
            self.store.set_rotation(
                name, self.owner, RotationStep.PROMOTED, detail, ttl=self.lease_ttl
            )
            _crash_point(RotationStep.PROMOTED)
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
                    "deferred",
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
        return self._refused(cred, number, detail, why)

    def _refused(
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
        self._event("rotation.failed", name, {"step": "verify", "reason": why})
        log.warning(
            "%s: the new token failed verification (%s); version %s stays current",
            name,
            why,
            detail.get("from_version"),
        )
        return RotationOutcome(
            name,
            "failed",
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
        self._event("rotation.completed", name, {"version": number, "previous": prev})
        log.info(
            "%s: renewed, now version %d, expires %s",
            name,
            number,
            isoformat(new.meta.expires_at) or "never",
        )
        for listener in list(self.on_promote):
            try:
                listener(name, number)
            except Exception:  # a subscriber must never break a rotation
                log.exception("promotion listener failed for %s", name)
        return RotationOutcome(
            name,
            "rotated",
            number,
            prev,
            new.meta.expires_at,
            message=f"now at version {number}",
            health=health,
        )

    def _failed(
        self,
        cred: Credential,
        current: TokenVersion | None,
        exc: GraphError | RotationError,
        attempt: int,
    ) -> RotationOutcome:
        name = cred.name
        now = self.clock.now()
        policy = self.policy_for(cred)
        retry_after: float | None
        if isinstance(exc, GraphError):
            info = exc.error
            kind = info.kind.value
            retry_after = info.retry_after
            message = info.describe()
            human = info.kind in (
                ErrorKind.TOKEN_DEAD,
                ErrorKind.PERMISSION,
                ErrorKind.BAD_REQUEST,
                ErrorKind.WRONG_TOKEN_KIND,
            )
        else:
            kind = str(getattr(exc, "reason", "upstream"))
            retry_after = getattr(exc, "retry_after", None)
            message = exc.message
            human = bool(getattr(exc, "needs_human", False))
        if human:
            health, status, retry = (
                Health.NEEDS_HUMAN,
                "needs_human",
                now + timedelta(seconds=policy.backoff_cap),
            )
        elif kind == "throttled":
            keep = assess(Health.OK, current.meta if current else None, now)
            health, status = keep, "deferred"
            retry = now + timedelta(seconds=retry_delay(policy, attempt, retry_after))
        else:
            health = Health.FAILING
            status = "failed"
            retry = now + timedelta(seconds=retry_delay(policy, attempt, retry_after))
        if (
            current is not None
            and current.meta.expires_at is not None
            and current.meta.expires_at <= now
        ):
            health = Health.EXPIRED if health is not Health.NEEDS_HUMAN else health
        hint = getattr(exc, "hint", None)
        detail = {"attempt": attempt, "last_error": message, "kind": kind}
        self.store.set_rotation(
            name,
            self.owner,
            None,
            detail,
            health=health,
            health_reason=message + (f" — {hint}" if hint else ""),
            next_due_at=retry,
            next_action="renew",
        )
        # A throttle is a delay, not a failure: it must not count in failure metrics or notices.
        event = "rotation.deferred" if status == "deferred" else "rotation.failed"
        self._event(
            event,
            name,
            {
                "step": "obtain",
                "kind": kind,
                "reason": message,
                "attempt": attempt,
                "needs_human": human,
            },
        )
        log.warning(
            "%s: renewal %s (%s): %s; next attempt %s",
            name,
            status,
            kind,
            message,
            isoformat(retry),
        )
        return RotationOutcome(
            name,
            status,
            current.version if current else None,
            message=message,
            retry_at=retry,
            health=health,
        )

    # --- failure reports ------------------------------------------------------------
    def report_failure(
        self,
        name: str,
        version: int,
        *,
        code: int | None = None,
        subcode: int | None = None,
        actor: str = "client",
    ) -> RotationOutcome:
        """A client says ``version`` got a dead-token error. Collapses concurrent reports into one renewal."""
        current = self._current(name)
        if current is not None and current.version > version:
            return RotationOutcome(
                name, "newer_exists", current.version, expires_at=current.meta.expires_at
            )
        self._event(
            "failure.reported",
            name,
            {"version": version, "code": code, "subcode": subcode, "actor": actor},
        )
        with self._exclusive(name) as held:
            if not held:
                return RotationOutcome(name, "busy", message="another worker holds the lease")
            cred = self.store.get(name)
            if cred.rotation_step:
                return self._resume(cred)
            current = self._current(name)
            if current is not None and current.version > version:
                return RotationOutcome(
                    name, "newer_exists", current.version, expires_at=current.meta.expires_at
                )
            issuer = issuer_for(cred.issuer)
            if issuer.meta and cred.app_id:
                try:
                    insp = self.inspect(name)
                except GraphError as exc:
                    return RotationOutcome(
                        name,
                        "failed",
                        version,
                        message=f"could not confirm with Meta: {exc.error.describe()}",
                    )
                if insp.result.is_valid and insp.canary_ok is not False:
                    return RotationOutcome(
                        name,
                        "still_valid",
                        version,
                        expires_at=insp.result.expires_at,
                        message="Meta says the token is valid; the error was not a dead token",
                    )
            return self._run(
                self.store.get(name), current, reason="reported_dead", value=None, token_dead=True
            )

    # --- previous versions ----------------------------------------------------------
    def retire_previous(self, name: str) -> list[int]:
        """Retire (or revoke upstream, per policy) previous versions whose grace period is over."""
        cred = self.store.get(name)
        policy = self.policy_for(cred)
        now = self.clock.now()
        done = []
        for v in self.store.versions(name):
            if (
                v.state is not VersionState.PREVIOUS
                or v.state_changed_at + timedelta(seconds=policy.grace) > now
            ):
                continue
            if (
                policy.revoke_previous
                and issuer_for(cred.issuer).meta
                and (v.meta.expires_at is None or v.meta.expires_at > now)
            ):
                self.revoke(name, v.version)
            else:
                self.store.set_version_state(
                    name, v.version, VersionState.RETIRED, reason="grace period over"
                )
            done.append(v.version)
        return done

    def revoke(self, name: str, version: int | None = None) -> TokenVersion:
        """Revoke a version upstream (``GET /oauth/revoke``) and mark it revoked."""
        cred = self.store.get(name)
        v = self.store.version(name, version)
        if issuer_for(cred.issuer).meta:
            if not cred.app_id:
                raise InputError(f"{name}: revoking at Meta needs the app id and secret", name=name)
            token = self.store.reveal(name, v.version)
            caller = token
            with contextlib.suppress(NotFoundError):
                cur = self.store.version(name)
                if cur.version != v.version:
                    caller = self.store.reveal(name, cur.version)
            self.graph.revoke_token(
                token,
                caller_token=caller,
                app_id=cred.app_id,
                app_secret=self.store.app_secret(cred.app_id),
            )
        self.store.set_version_state(name, v.version, VersionState.REVOKED, reason="revoked")
        if v.state is VersionState.CURRENT:
            self.store.update_credential(
                name,
                health=Health.NEEDS_HUMAN,
                health_reason="the current version was revoked; add or rotate a new one",
            )
        self._event("version.revoked", name, {"version": v.version})
        return self.store.version(name, v.version)

    # --- plumbing -----------------------------------------------------------------
    def resume_all(self) -> list[RotationOutcome]:
        """On start-up: finish every rotation a dead process left half-way (when its lease expired)."""
        outcomes = []
        for name in self.store.unfinished_rotations():
            try:
                with self._exclusive(name, wait=False) as held:
                    if not held:
                        continue
                    # Re-read under the lease: the rotation may have finished since the list was read.
                    cred = self.store.get(name)
                    if cred.rotation_step:
                        outcomes.append(self._resume(cred))
            except NotFoundError:
                continue  # removed meanwhile
            except Exception as exc:
                # One broken credential must never keep the others (or start-up) down.
                outcomes.append(self._isolate(name, exc))
        return outcomes

    def _isolate(self, name: str, exc: Exception) -> RotationOutcome:
        """Mark ``name`` failing with the reason, log it, and let the caller carry on."""
        what = exc.message if isinstance(exc, PermatokenError) else type(exc).__name__
        reason = f"resuming its unfinished rotation failed: {what}"
        log.error("%s: %s", name, reason, exc_info=not isinstance(exc, PermatokenError))
        with contextlib.suppress(PermatokenError):
            self.store.update_credential(
                name, health=Health.FAILING, health_reason=redact(reason)[:500]
            )
        self._event("rotation.failed", name, {"step": "resume", "reason": reason})
        return RotationOutcome(name, "failed", message=reason, health=Health.FAILING)

    def _pending(self, name: str) -> TokenVersion | None:
        try:
            return self.store.version(name, state=VersionState.PENDING)
        except NotFoundError:
            return None

    def _detail(self, name: str) -> dict[str, Any] | None:
        import sqlalchemy as sa

        from .store.schema import credentials

        with self.store.read() as conn:
            return conn.execute(
                sa.select(credentials.c.rotation_detail).where(credentials.c.name == name)
            ).scalar()

    def _context(
        self, cred: Credential, current: TokenVersion | None, *, dead: bool
    ) -> IssueContext:
        name = cred.name
        return IssueContext(
            credential=cred,
            current=current,
            now=self.clock.now(),
            graph=self.graph,
            http=self.http,
            current_token=lambda: self.store.reveal(name),
            app_secret=lambda: self.store.app_secret(cred.app_id or ""),
            secret=lambda s: self.store.get_secret(name, s),
            # Another credential's token only after checking who pointed this one at it.
            reveal_credential=guarded_reveal(self.store, cred),
            current_dead=dead,
        )

    def _event(self, kind: str, name: str, detail: dict[str, Any]) -> None:
        for listener in list(self.on_event):
            try:
                listener(kind, name, detail)
            except Exception:
                log.exception("event listener failed for %s", name)


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


__all__ = [
    "CRASH_ENV",
    "Inspection",
    "RenewalEngine",
    "RotationOutcome",
    "RotationStep",
    "meta_from_debug",
    "plan_next",
]
_ = replace
