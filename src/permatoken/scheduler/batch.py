"""Batched renewals: a tick renews its due credentials step by step *together*.

The one-by-one path (:meth:`Scheduler._work` → :meth:`RenewalEngine.rotate`) costs about 80
statements per renewal and runs the upstream calls one after the other. Here the plain
renewals of a claimed batch go through the same staged rotation, each step persisted for the
whole batch in one fenced statement where it can be::

    re-take leases, load rows (2) → reserve budgets (~4 per app) → obtaining (1 for all)
    → per credential, as each answer arrives: obtain upstream, store as pending (3)
    → verify upstream, concurrently → verified (2 for all) → promote and finish (5 for all)

so a renewal costs about 3 statements plus a fixed ~25 per tick, whatever the number stored.
Exchanges and mints create tokens, so each new value is stored the moment it arrives and at
most ``scheduler_obtain_concurrency`` (default 1) are in flight: what a crash can make the
next worker redo. Verifications only read and overlap, up to ``scheduler_concurrency``.
The engine's guarantees hold:

- a crash at any step leaves every credential of the batch at a persisted step, which the
  engine's :meth:`~permatoken.rotation.staged.StagedRotation._resume` finishes when the lease expires
  (``PERMATOKEN_CRASH_AT`` kills the process after each batched step as after each single one);
  promotion and the end of the rotation are one transaction;
- every step write is fenced by the lease owner: a credential whose lease was lost drops out;
- the engine's in-process lock per credential is held throughout, so an API rotation in the
  same process waits or answers ``busy``; the version seen at claim time must still be current.

Anything unusual (a step left by a dead worker, another action, an issuer that updates
credential secrets, a failure or a refused value) takes the engine's one-by-one code for that
credential only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import GraphError, PermatokenError
from ..events import EventKind
from ..health import assess
from ..issuers import issuer_for
from ..meta.debug import DebugTokenResult
from ..meta.errors import ErrorKind
from ..models import Health, TokenVersion, VersionMeta, VersionState
from ..notify import notices as nt
from ..policy import retry_delay
from ..rotation import RotationStep, _crash_point, meta_from_debug, plan_next
from ..rotation.inspection import canary_call
from ..store import batch as sb
from .batch_steps import Item, Steps, _detail
from .budgets import costs

if TYPE_CHECKING:
    from .core import Claim

log = logging.getLogger(__name__)
_R = TypeVar("_R")


class BatchRenewal(Steps):
    """Runs the plain renewals of one claimed batch; see the module docstring."""

    # --- entry ---------------------------------------------------------------------------
    def run(self, claims: list[Claim]) -> list[Claim]:
        """Renew the plain renewals among ``claims``; return the claims left for ``_work``."""
        renewals = [c for c in claims if c.action == "renew"]
        if len(renewals) < 2:
            return claims
        rest = [c for c in claims if c.action != "renew"]
        items = self._eligible(renewals, rest)
        try:
            if items:
                self._renew(items)
        finally:
            for it in items:
                it.lock.release()
            sb.release(self.store, [it.name for it in items], self.owner)
        return rest

    def _eligible(self, renewals: list[Claim], rest: list[Claim]) -> list[Item]:
        ttl = self.sched.lease_ttl
        held = sb.retake_leases(self.store, [c.name for c in renewals], self.owner, ttl)
        loaded = sb.load(self.store, [c.name for c in renewals if c.name in held])
        now = self.sched.clock.now()
        items: list[Item] = []
        for c in renewals:
            found = loaded.get(c.name)
            cred = found.credential if found else None
            if (
                found is None
                or cred is None
                or cred.rotation_step
                or cred.next_action != "renew"
                or cred.next_due_at is None
                or cred.next_due_at > now
                or found.current is None
                or cred.current_version != c.version
                or not issuer_for(cred.issuer).automatic
            ):
                rest.append(c)  # the one-by-one path re-checks, resumes or skips it
                continue
            lock = self.engine.locks.lock_for(c.name)
            if not lock.acquire(blocking=False):
                rest.append(c)  # an API rotation in this process holds it: _work says busy
                continue
            items.append(Item(c, found, lock, self.sched.layers.for_credential(cred)))
        return items

    def _renew(self, items: list[Item]) -> None:
        items = self._reserve(items)
        items = self._step(
            items, RotationStep.OBTAINING, self._start_detail, health=Health.RENEWING
        )
        if not items:
            return
        self._secrets = sb.app_secrets(self.store, [it.cred.app_id or "" for it in items])
        # Exchanges and mints create tokens: each answer is stored as soon as it arrives, and
        # at most ``scheduler_obtain_concurrency`` are in flight (what a crash can repeat).
        # Verifications only read, up to ``scheduler_concurrency`` at a time.
        stored = self._run_each(self.sched.obtain_concurrency, self._obtain_and_store, items)
        items = [it for it in stored if it is not None]
        verifying = [it for it in items if self._verifies(it)]
        answers = self._run_each(self.sched.concurrency, self._verify, verifying)
        items = self._verified(items, dict(zip(map(id, verifying), answers, strict=True)))
        self._promote_and_finish(items)

    def _run_each(self, workers: int, fn: Callable[[Item], _R], items: list[Item]) -> list[_R]:
        if not items:
            return []
        with ThreadPoolExecutor(
            max_workers=max(1, min(workers, len(items))), thread_name_prefix="permatoken-renew"
        ) as pool:
            out = list(pool.map(fn, items))
        now = self.sched.clock.now()
        for app_id in {it.cred.app_id for it in items if it.cred.app_id}:
            self.sched.budgets.observe(self.engine.graph.last_usage, app_id, now)
        return out

    def _reserve(self, items: list[Item]) -> list[Item]:
        now = self.sched.clock.now()
        answers = self.sched.budgets.reserve_many([costs("renew", it.cred) for it in items], now)
        later = {
            it.id: {"next_due_at": at}
            for it, at in zip(items, answers, strict=True)
            if at is not None
        }
        if later:
            with self.store.write() as conn:
                sb.fenced_update(conn, self.owner, later, next_action="renew", updated_at=now)
            self._count("deferred", len(later))
        return [it for it in items if it.id not in later]

    def _start_detail(self, it: Item) -> dict[str, Any]:
        attempt = int((it.loaded.detail or {}).get("attempt", 0)) + 1
        it.detail = {
            "attempt": attempt,
            "reason": "scheduled",
            "from_version": it.loaded.current.version if it.loaded.current else None,
        }
        return it.detail

    def _verifies(self, it: Item) -> bool:
        return bool(issuer_for(it.cred.issuer).meta and it.cred.app_id)

    def _verify(self, it: Item) -> tuple[DebugTokenResult, bool | None] | GraphError:
        assert it.obtained is not None
        token = it.obtained.token
        try:
            secret = self._secrets.get(it.cred.app_id or "") or self.store.app_secret(
                it.cred.app_id or ""
            )
            result = self.engine.graph.debug_token(
                token, app_id=it.cred.app_id or "", app_secret=secret
            )
        except GraphError as exc:
            return exc
        canary = None
        if result.is_valid and it.cred.options.get("canary"):
            canary = canary_call(self.engine.graph, it.cred, token, secret)
        return result, canary

    def _verified(self, items: list[Item], results: dict[int, Any]) -> list[Item]:
        now = self.sched.clock.now()
        metas: list[tuple[int, int, VersionMeta]] = []
        ok: list[Item] = []
        refused: list[tuple[Item, str]] = []
        for it in items:
            number = int(it.detail["version"])
            answer = results.get(id(it))
            if answer is None:
                ok.append(it)  # nothing upstream can vouch for it: the issuer's facts stand
                continue
            if isinstance(answer, GraphError):
                self._unverified(it, answer)
                continue
            result, canary = answer
            said = self.engine.describe(result, it.cred)
            it.meta = meta_from_debug(result, now=now, summary=said.summary)
            metas.append((it.id, number, it.meta))
            valid = result.is_valid and canary is not False
            self.engine.emit(
                EventKind.INSPECTED,
                it.name,
                {
                    "version": number,
                    "valid": result.is_valid,
                    "verdict": said.summary,
                    "health": (Health.OK if result.is_valid else Health.INVALID).value,
                    "batched": True,
                },
            )
            app = it.cred.app_id
            if valid and app and result.app_id and result.app_id != app:
                refused.append((it, f"the new token belongs to app {result.app_id}, not {app}"))
            elif valid:
                ok.append(it)
            else:
                refused.append((it, said.summary))
        ok = self._step(
            ok,
            RotationStep.VERIFIED,
            _detail,
            before=lambda conn: sb.update_meta(conn, metas),
        )
        for it, why in refused:
            self._refuse(it, why)
        return ok

    def _refuse(self, it: Item, why: str) -> None:
        number = int(it.detail["version"])
        self._engine_step(it, lambda: self.engine.refuse_pending(it.cred, number, it.detail, why))

    def _unverified(self, it: Item, exc: GraphError) -> None:
        """``RenewalEngine._verify`` for a verification that could not be asked or failed."""
        if exc.error.kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT, ErrorKind.UNKNOWN):
            it.detail["attempt"] = int(it.detail.get("attempt", 1)) + 1
            retry = self.sched.clock.now() + timedelta(
                seconds=retry_delay(it.policy, it.detail["attempt"], exc.error.retry_after)
            )

            def defer() -> Any:
                self.store.set_rotation(
                    it.name,
                    self.owner,
                    RotationStep.PENDING,
                    it.detail,
                    next_due_at=retry,
                    next_action="renew",
                )
                for key in costs("renew", it.cred):
                    self.sched.budgets.block(key, retry)
                self._count("deferred")

            self._engine_step(it, defer, count=False)
            return
        self._refuse(it, exc.error.describe())

    def _engine_step(self, it: Item, fn: Callable[[], Any], *, count: bool = True) -> None:
        try:
            fn()
        except PermatokenError as exc:
            self._count("skipped")
            log.warning("%s: %s", it.name, exc.message)
            return
        if count:
            self._count("failed")

    # --- promotion, finish ---------------------------------------------------------------
    def _promote_and_finish(self, items: list[Item]) -> None:
        """Promote and finish in one transaction: a crash leaves ``verified`` or done."""
        if not items:
            return
        now = self.sched.clock.now()
        plans: dict[int, dict[str, Any]] = {}
        for it in items:
            prev = it.detail.get("from_version")
            assert it.meta is not None and it.obtained is not None
            number = int(it.detail["version"])
            new = TokenVersion(
                it.id,
                number,
                VersionState.CURRENT,
                it.obtained.token.fingerprint,
                "",
                it.meta,
                now,
                now,
            )
            stays = bool(it.detail.get("old_stays_valid", True))
            due, action = plan_next(
                it.policy, new, it.cred, now, has_previous=prev is not None and stays
            )
            health = assess(Health.OK, new.meta, now)
            plans[it.id] = {"health": health.value, "next_due_at": due, "next_action": action}
        promoted: dict[int, int | None] = {}
        with self.store.write() as conn:
            promoted = sb.promote(
                self.store, conn, [(it.cred, int(it.detail["version"])) for it in items]
            )
            done = sb.fenced_update(
                conn,
                self.owner,
                {i: plan for i, plan in plans.items() if i in promoted},
                rotation_step=None,
                rotation_detail=None,
                health_reason=None,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        _crash_point(RotationStep.PROMOTED)
        _crash_point("finalized")
        finished = [it for it in items if it.id in done]
        for it in items:
            if it.id not in done:
                log.warning("%s: not finished in the batch; the engine resumes it", it.name)
        self._count("skipped", len(items) - len(finished))
        self._count("renewed", len(finished))
        for it in finished:
            prev = it.detail.get("from_version")
            if prev is not None and not it.detail.get("old_stays_valid", True):
                if promoted.get(it.id) == prev:
                    self.store.set_version_state(
                        it.name, prev, VersionState.RETIRED, reason="the issuer invalidated it"
                    )
        self._announce(finished, now)

    def _announce(self, items: list[Item], now: datetime) -> None:
        """Events, notices and subscribers, as ``_finalize`` of the engine tells them.

        The scheduler's notices for a completed renewal (``recovered`` after trouble, and
        ``renewed`` when enabled) are looked up for the whole batch in one read; only the
        credentials that get one take the one-by-one notice code.
        """
        sched = self.sched
        pairs = [
            (it.name, int(it.detail["from_version"]))
            for it in items
            if it.detail.get("from_version") is not None
        ]
        troubled = sb.noticed(self.store, pairs, [e.value for e in nt.TROUBLE])
        every = nt.NoticeEvent.RENEWED.value in sched.events
        for it in items:
            number = int(it.detail["version"])
            prev = it.detail.get("from_version")
            detail: dict[str, Any] = {"version": number, "previous": prev}
            if not every and (it.name, prev) not in troubled:
                detail["batched"] = True  # nothing for the scheduler to notice
            self.engine.emit(EventKind.ROTATION_COMPLETED, it.name, detail)
            log.info("%s: renewed, now version %d", it.name, number)
            self.engine.events.promoted(it.name, number)


__all__ = ["BatchRenewal"]
