"""RenewalEngine: inspects and rotates the credentials of one store (the public entry points).

The staged rotation is :class:`~.staged.StagedRotation`; its decisions are in :mod:`.steps`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx

from .._exceptions import GraphError, InputError, NotFoundError, PermatokenError
from .._secret import Secret, redact
from ..events import EngineEvent, EventBus, EventKind
from ..issuers import IssueContext, issuer_for
from ..meta.debug import DebugTokenResult, Verdict
from ..meta.graph import GraphClient
from ..models import (
    Credential,
    Health,
    TokenVersion,
    VersionState,
)
from ..policy import Policy, resolve
from ..references import guarded_reveal
from ..store import Store
from ..timeutil import Clock, SystemClock
from .inspection import (
    Inspection,
    canary_call,
    describe_result,
    health_after_inspection,
    meta_from_debug,
)
from .locking import CredentialLocks, exclusive
from .staged import CRASH_ENV, StagedRotation
from .steps import Outcome, RotationOutcome

log = logging.getLogger("permatoken.rotation")


class RenewalEngine(StagedRotation):
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
        events: EventBus | None = None,
    ) -> None:
        """``events`` is where listeners subscribe (built first, see :mod:`permatoken.runtime`);
        ``lease_ttl`` and ``policy_resolver`` are fixed here, never changed afterwards."""
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
        #: Resolves the effective policy (global, tenant and credential layers); see runtime.build_runtime.
        self.policy_resolver = policy_resolver
        #: The in-process lock per credential (the scheduler's batched renewal takes them too).
        self.locks = CredentialLocks()
        #: Every event and promotion goes out here (notices, metrics, caches, sinks subscribe).
        self.events = events if events is not None else EventBus()

    def __repr__(self) -> str:
        return f"RenewalEngine(owner={self.owner!r})"

    def close(self) -> None:
        self.http.close()
        self.graph.close()

    # --- policy -------------------------------------------------------------------
    @property
    def fixed_policy(self) -> Policy | None:
        """The one policy given to the constructor for every credential, if any."""
        return self._fixed_policy

    def policy_for(self, cred: Credential) -> Policy:
        if self._fixed_policy is not None:
            return self._fixed_policy
        if self.policy_resolver is not None:
            return self.policy_resolver(cred)
        return resolve(self.global_policy, cred.policy)

    # --- locking ------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the in-process lock and the database lease on ``name``; yields False if busy."""
        with exclusive(
            self.store,
            self.locks,
            name,
            owner=self.owner,
            lease_ttl=self.lease_ttl,
            wait_timeout=self.wait_timeout,
            wait=wait,
        ) as held:
            yield held

    # --- inspection ---------------------------------------------------------------
    def inspect_value(self, token: Secret, app_id: str) -> DebugTokenResult:
        """debug_token for a value that is not stored (``permatoken inspect``)."""
        return self.graph.debug_token(
            token, app_id=app_id, app_secret=self.store.app_secret(app_id)
        )

    def describe(self, result: DebugTokenResult, cred: Credential | None = None) -> Verdict:
        policy = self.policy_for(cred) if cred is not None else None
        return describe_result(result, now=self.clock.now(), cred=cred, policy=policy)

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
            app_secret = self.store.app_secret(cred.app_id) if cred.app_id else None
            canary_ok = canary_call(self.graph, cred, token, app_secret)
        self.store.update_version_meta(
            name, v.version, meta_from_debug(result, now=now, summary=said.summary)
        )
        if v.state is VersionState.CURRENT:
            health = health_after_inspection(result, now, canary_ok)
            fields: dict[str, Any] = {
                "health": health,
                "health_reason": None if health in (Health.OK, Health.EXPIRING) else said.summary,
            }
            self.store.update_credential(name, **fields)
        else:
            health = Health.OK if result.is_valid else Health.INVALID
        self.emit(
            EventKind.INSPECTED,
            name,
            {
                "version": v.version,
                "valid": result.is_valid,
                "verdict": said.summary,
                "health": health.value,
            },
        )
        return Inspection(result, said, health, canary_ok)

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
                    name, Outcome.BUSY, message="another worker holds the lease; try again later"
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
            Outcome.ALREADY_ROTATED,
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
                Outcome.ALREADY_ROTATED,
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
                name, Outcome.NEWER_EXISTS, current.version, expires_at=current.meta.expires_at
            )
        self.emit(
            EventKind.FAILURE_REPORTED,
            name,
            {"version": version, "code": code, "subcode": subcode, "actor": actor},
        )
        with self._exclusive(name) as held:
            if not held:
                return RotationOutcome(name, Outcome.BUSY, message="another worker holds the lease")
            cred = self.store.get(name)
            if cred.rotation_step:
                return self._resume(cred)
            current = self._current(name)
            if current is not None and current.version > version:
                return RotationOutcome(
                    name, Outcome.NEWER_EXISTS, current.version, expires_at=current.meta.expires_at
                )
            issuer = issuer_for(cred.issuer)
            if issuer.meta and cred.app_id:
                try:
                    insp = self.inspect(name)
                except GraphError as exc:
                    return RotationOutcome(
                        name,
                        Outcome.FAILED,
                        version,
                        message=f"could not confirm with Meta: {exc.error.describe()}",
                    )
                if insp.result.is_valid and insp.canary_ok is not False:
                    return RotationOutcome(
                        name,
                        Outcome.STILL_VALID,
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
        self.emit(EventKind.VERSION_REVOKED, name, {"version": v.version})
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
        self.emit(EventKind.ROTATION_FAILED, name, {"step": "resume", "reason": reason})
        return RotationOutcome(name, Outcome.FAILED, message=reason, health=Health.FAILING)

    def _holder(self, name: str) -> Callable[[Secret], str | None]:
        """``in_use`` for :func:`check_obtained`: by fingerprint, decrypting only matches."""

        def in_use(value: Secret) -> str | None:
            for other, number in self.store.live_versions_with_fingerprint(value.fingerprint):
                if self.store.reveal(other, number) == value:
                    return f"version {number}" if other == name else "another credential"
            return None

        return in_use

    def issue_context(
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

    def emit(self, kind: EventKind, name: str, detail: dict[str, Any]) -> None:
        self.events.emit(EngineEvent(kind, name, detail))


__all__ = ["CRASH_ENV", "RenewalEngine"]
