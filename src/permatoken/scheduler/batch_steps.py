"""The steps a batched renewal shares with its obtaining phase (see :mod:`.batch`).

- :meth:`Steps._step` persists a rotation step for many credentials in one fenced statement
  (one transaction with whatever ``before`` writes), then passes the engine's crash point;
- :meth:`Steps._obtain_and_store` runs on a worker thread: the issuer's call, the checks of
  :func:`~permatoken.issuers.checks.check_obtained`, and the new value stored as ``pending`` at
  once (its own small transaction), so that a crash loses only the answers still in flight;
- failures go through the engine's own code (``RenewalEngine.record_failure``), as one by one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._exceptions import GraphError, PermatokenError, RotationError
from .._secret import Secret
from ..events import EventKind
from ..issuers import IssueContext, Obtained, issuer_for
from ..issuers.checks import check_obtained
from ..meta.errors import ErrorKind
from ..models import Credential, VersionMeta
from ..policy import Policy
from ..rotation import Outcome, RotationStep, _crash_point
from ..store import batch as sb
from .budgets import costs

if TYPE_CHECKING:
    from .core import Claim, Scheduler, TickReport

log = logging.getLogger(__name__)


@dataclass
class Item:
    claim: Claim
    loaded: sb.Loaded
    lock: threading.Lock
    policy: Policy
    detail: dict[str, Any] = field(default_factory=dict)
    obtained: Obtained | None = None
    meta: VersionMeta | None = None

    @property
    def cred(self) -> Credential:
        return self.loaded.credential

    @property
    def name(self) -> str:
        return self.loaded.credential.name

    @property
    def id(self) -> int:
        return self.loaded.credential.id


class Steps:
    """State and steps of one batch (the base of :class:`.batch.BatchRenewal`)."""

    def __init__(self, sched: Scheduler, report: TickReport) -> None:
        self.sched = sched
        self.store = sched.store
        self.engine = sched.engine
        self.owner = sched.owner
        self.report = report
        self._secrets: dict[str, Secret] = {}
        #: Guards ``report`` against the worker threads.
        self._lock = threading.Lock()

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.report, what, getattr(self.report, what) + n)

    # --- the steps -----------------------------------------------------------------------
    def _step(
        self,
        items: list[Item],
        step: RotationStep,
        detail: Callable[[Item], dict[str, Any]],
        before: Callable[[Any], None] | None = None,
        **extra: Any,
    ) -> list[Item]:
        """Persist ``step`` for every item (fenced, one transaction); the items still ours."""
        if not items:
            return items
        now = self.sched.clock.now()
        until = now + timedelta(seconds=self.engine.lease_ttl)
        with self.store.write() as conn:
            if before is not None:
                before(conn)
            done = sb.fenced_update(
                conn,
                self.owner,
                {it.id: {"rotation_detail": detail(it)} for it in items},
                rotation_step=step.value,
                updated_at=now,
                lease_expires_at=until,
                next_due_at=until,
                **extra,
            )
        _crash_point(step)
        lost = [it for it in items if it.id not in done]
        for it in lost:
            log.warning(
                "%s: lost the lease during a batched renewal; another worker resumes it", it.name
            )
        self._count("skipped", len(lost))
        if step is RotationStep.OBTAINING:
            for it in items:
                if it.id in done:
                    self.engine.emit(
                        EventKind.ROTATION_STARTED,
                        it.name,
                        {"reason": "scheduled", "attempt": it.detail["attempt"]},
                    )
        return [it for it in items if it.id in done]

    # --- obtaining -----------------------------------------------------------------------
    def _context(self, it: Item, *, dead: bool) -> IssueContext:
        row = it.loaded.current_row

        def current_token() -> Secret:
            if row is None:
                return self.store.reveal(it.name)
            return self.store.token_versions.open_row(it.name, it.id, row)["token"]

        def app_secret() -> Secret:
            app_id = it.cred.app_id or ""
            return (
                self._secrets[app_id] if app_id in self._secrets else self.store.app_secret(app_id)
            )

        ctx = self.engine.issue_context(it.cred, it.loaded.current, dead=dead)
        return dataclasses.replace(ctx, current_token=current_token, app_secret=app_secret)

    def _obtain(self, it: Item) -> Obtained | Exception:
        """What ``RenewalEngine._run`` does between persisting ``obtaining`` and the checks."""
        issuer = issuer_for(it.cred.issuer)
        try:
            try:
                return issuer.obtain(self._context(it, dead=False))
            except GraphError as exc:
                if exc.error.kind is ErrorKind.TOKEN_DEAD and not issuer.recovers_dead:
                    self.engine.confirm_dead(it.cred, exc)
                    return issuer.obtain(self._context(it, dead=True))
                raise
        except Exception as exc:  # judged on the tick's thread
            return exc

    def _failed(self, it: Item, exc: Exception) -> None:
        """A failed attempt, recorded by the engine's own code (the one-by-one path's outcome)."""
        if not isinstance(exc, GraphError | RotationError):
            self._count("failed")
            log.error("scheduled renewal of %s failed", it.name, exc_info=exc)
            self.sched.postpone(it.name, self.sched.clock.now() + timedelta(minutes=5), "renew")
            return
        try:
            outcome = self.engine.record_failure(
                it.cred, it.loaded.current, exc, it.detail["attempt"]
            )
        except PermatokenError as err:
            self._count("skipped")
            log.warning("%s: could not record the failed renewal: %s", it.name, err.message)
            return
        if outcome.status == Outcome.DEFERRED:
            self._count("deferred")
            if outcome.retry_at is not None:
                for key in costs("renew", it.cred):
                    self.sched.budgets.block(key, outcome.retry_at)
        else:
            self._count("failed")

    # --- pending, verification -------------------------------------------------------------
    def _obtain_and_store(self, it: Item) -> Item | None:
        """Obtain, check and store one new value as ``pending`` (on a worker thread)."""
        answer = self._obtain(it)
        if isinstance(answer, Obtained):
            try:
                # Whether another version holds the value is asked by the insert itself.
                check_obtained(it.name, answer, now=self.sched.clock.now(), in_use=_nobody)
                stored = self._store_pending(it, answer)
            except RotationError as exc:
                answer = exc
            except PermatokenError as exc:
                self._count("skipped")
                log.warning("%s: could not store the new value: %s", it.name, exc.message)
                return None
            else:
                return it if stored else None
        self._failed(it, answer)
        return None

    def _store_pending(self, it: Item, answer: Obtained) -> bool:
        it.obtained = answer
        it.meta = VersionMeta(
            token_type=answer.token_type,
            expires_at=answer.expires_at if answer.expiry_known else None,
        )
        it.detail |= {
            "version": it.loaded.top_version + 1,
            "old_stays_valid": answer.old_stays_valid,
            "expiry_known": answer.expiry_known,
        }
        if not (answer.companions or answer.secret_updates):
            new = sb.NewPending(it.cred, int(it.detail["version"]), answer.token, it.meta)

            def insert(conn: Any) -> None:
                if not sb.insert_pending(self.store, conn, new):
                    raise _SameFingerprint

            try:
                return bool(self._step([it], RotationStep.PENDING, _detail, before=insert))
            except _SameFingerprint:
                # Decrypt the few versions with this fingerprint: a duplicate is refused.
                check_obtained(it.name, answer, now=self.sched.clock.now(), in_use=self._in_use(it))
        # Secrets rotated with the token (or a mere fingerprint collision): the store's own
        # transaction, as the engine does it.
        v = self.store.add_pending(
            it.name,
            answer.token,
            it.meta,
            companions=answer.companions,
            secrets=answer.secret_updates,
        )
        it.detail["version"] = v.version
        self.store.set_rotation(
            it.name, self.owner, RotationStep.PENDING, it.detail, ttl=self.engine.lease_ttl
        )
        _crash_point(RotationStep.PENDING)
        return True

    def _in_use(self, it: Item) -> Callable[[Secret], str | None]:
        def in_use(value: Secret) -> str | None:
            for other, number in self.store.live_versions_with_fingerprint(value.fingerprint):
                if self.store.reveal(other, number) == value:
                    return f"version {number}" if other == it.name else "another credential"
            return None

        return in_use


class _SameFingerprint(Exception):
    """A live version has the new value's fingerprint: nothing was written."""


def _nobody(value: Secret) -> str | None:
    return None


def _detail(it: Item) -> dict[str, Any]:
    return it.detail


__all__ = ["Item", "Steps"]
