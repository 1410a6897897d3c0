"""Acting on what Meta announced: mark at once, confirm with ``debug_token``, tell a human.

A :class:`DeliveryHandler` runs on its own thread. The HTTP route records a verified change and
wakes it; it takes every ``received`` row in order (also the ones a crashed process left behind,
on start) and writes each row's outcome once. It never runs on the event loop, and a failure
with one row (Meta unreachable, a credential removed meanwhile) is written into that row's
outcome without stopping the others.

Marking comes first and in one transaction for every credential concerned ("at once"); the
``debug_token`` confirmation follows, one credential at a time, and may only make the verdict
more precise (``invalid`` with Meta's reason, ``needs_human`` when the token lives but lost the
WABA) or clear it when Meta says the token is fine and still reaches the WABA.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .._exceptions import GraphError, NotFoundError, PermatokenError
from ..health import assess
from ..models import Health, VersionMeta
from ..notify import notices as nt
from ..notify.delivery import Outbox, channels_for
from ..rotation import RenewalEngine, meta_from_debug
from ..settings import Settings
from ..store import Store
from ..store.providers import Deliveries
from .events import LIFECYCLE, TODO, Action, Change, action_for, app_scoped, meaning

log = logging.getLogger("permatoken.webhooks")


def change_of_row(row: dict[str, Any]) -> Change:
    return Change(
        key=row["key"],
        source=row["source"],
        app_id=row["app_id"],
        event=row["event"],
        waba_id=row["waba_id"],
        business_id=row["business_id"],
        user_id=row["user_id"],
        time=row["event_time"],
        payload=dict(row["payload"] or {}),
    )


def row_of_change(change: Change) -> dict[str, Any]:
    return {
        "key": change.key,
        "source": change.source,
        "app_id": change.app_id,
        "event": change.event,
        "waba_id": change.waba_id,
        "business_id": change.business_id,
        "user_id": change.user_id,
        "event_time": change.time,
        "payload": change.payload,
    }


class DeliveryHandler:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: RenewalEngine,
        *,
        on_change: Callable[[str], None] | None = None,
        owner: str = "webhooks",
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.deliveries = Deliveries(store)
        self.outbox = Outbox(store, owner=owner, clock=engine.clock)
        self.on_change = on_change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- running ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._wake.set()  # rows a previous process left unhandled
        self._thread = threading.Thread(target=self._loop, name="permatoken-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(30.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except PermatokenError as exc:
                log.warning("handling Meta's deliveries failed: %s", exc.message)
            except Exception as exc:  # keep the thread alive; the rows stay received
                log.error("handling Meta's deliveries failed: %s", type(exc).__name__)

    def run_once(self) -> int:
        """Handle every received row, oldest first; how many were handled."""
        with self._lock:
            done = 0
            while True:
                rows = self.deliveries.pending()
                if not rows:
                    return done
                for row in rows:
                    self._handle_row(row)
                    done += 1

    # --- one change ---------------------------------------------------------------------
    def _handle_row(self, row: dict[str, Any]) -> None:
        change = change_of_row(row)
        try:
            state, outcome = self.handle(row["id"], change)
        except PermatokenError as exc:
            state, outcome = "failed", {"error": exc.message}
        except Exception as exc:  # a bug must not make the row come back every sweep
            log.error("handling a Meta delivery failed: %s", type(exc).__name__)
            state, outcome = "failed", {"error": type(exc).__name__}
        if self.deliveries.finish(row["id"], state, outcome):
            log.info(
                "meta %s %s for WABA %s / user %s: %s %s",
                change.source,
                change.event,
                change.waba_id,
                change.user_id,
                state,
                {k: v for k, v in outcome.items() if k != "confirmed"},
            )

    def handle(self, rid: int, change: Change) -> tuple[str, dict[str, Any]]:
        action = action_for(change.event, change.payload)
        if action is Action.RECORD:
            return "ignored", {"reason": f"{change.event} does not concern tokens"}
        names = self.deliveries.credentials_reached(
            app_id=change.app_id if app_scoped(change.event) else None,
            waba_id=change.waba_id,
            business_id=change.business_id if change.event == "PARTNER_APP_UNINSTALLED" else None,
            user_id=change.user_id,
        )
        if not names:
            whom = f"WABA {change.waba_id}" if change.waba_id else f"user {change.user_id}"
            return "ignored", {"reason": f"no credential of {whom} is stored"}
        stale = action is not Action.REINSPECT and self.deliveries.newer_handled(
            rid, change.time, LIFECYCLE, waba_id=change.waba_id, user_id=change.user_id
        )
        if stale:
            # A newer event for this WABA was handled first: this one only re-inspects.
            confirmed = {n: self._confirm(n, change, Action.REINSPECT) for n in names}
            self._changed(names)
            for name in names:
                self._notify(name, change, confirmed[name])
            return "stale", {"credentials": names, "confirmed": confirmed}
        if action is not Action.REINSPECT:
            health = Health.INVALID if action is Action.DEAD else Health.NEEDS_HUMAN
            reason = f"Meta announced {change.event}: {meaning(change)}"
            self.deliveries.mark(
                names, health, reason, detail={"event": change.event, "source": change.source}
            )
            self._changed(names)
        confirmed = {n: self._confirm(n, change, action) for n in names}
        self._changed(names)
        # Also after a re-inspection: an "installed" that finds the token dead (Meta reordered
        # an uninstall behind it) is the human's only news of the death.
        for name in names:
            self._notify(name, change, confirmed[name])
        return "handled", {"action": action.value, "credentials": names, "confirmed": confirmed}

    def _changed(self, names: list[str]) -> None:
        if self.on_change is not None:
            for name in names:
                self.on_change(name)

    def _confirm(self, name: str, change: Change, action: Action) -> str:
        """Ask Meta about ``name``'s current token; store what it says; a phrase for the notice."""
        try:
            cred = self.store.get(name)
            current = self.store.version(name)
        except NotFoundError:
            return "removed meanwhile"
        if not cred.app_id:
            return "not confirmed: the credential has no app to call debug_token with"
        now = self.engine.clock.now()
        try:
            result = self.engine.graph.debug_token(
                self.store.reveal(name, current.version),
                app_id=cred.app_id,
                app_secret=self.store.app_secret(cred.app_id),
            )
        except GraphError as exc:
            return f"not confirmed: debug_token failed ({exc.error.describe()})"
        said = self.engine.describe(result, cred)
        self.store.update_version_meta(
            name, current.version, meta_from_debug(result, now=now, summary=said.summary)
        )
        # A token without granular scopes says nothing about WABAs: it cannot have "lost" one.
        reaches = (
            change.waba_id is None
            or change.waba_id in result.waba_ids
            or not (result.waba_ids or result.granular_scopes)
        )
        if not result.is_valid:
            health, phrase = Health.INVALID, f"Meta confirms the token is dead: {said.summary}"
        elif action is Action.SUSPEND:
            health, phrase = Health.NEEDS_HUMAN, "the token is valid but cannot send"
        elif not reaches:
            health = Health.NEEDS_HUMAN
            phrase = f"the token is valid but no longer reaches WABA {change.waba_id}"
        else:
            health = assess(Health.OK, _valid_meta(result.expires_at), now)
            phrase = "Meta says the token is valid and still reaches the WABA"
        reason = None if health in (Health.OK, Health.EXPIRING) else _reason(change, phrase)
        self.store.update_credential(name, health=health, health_reason=reason)
        return phrase

    def _notify(self, name: str, change: Change, confirmed: str) -> None:
        try:
            cred = self.store.get(name)
            version = self.store.version(name).version
        except NotFoundError:
            return
        if cred.health in (Health.OK, Health.EXPIRING):
            return  # Meta says the token is fine: nothing for a human to do
        notice = nt.account_update(
            name,
            cred.tenant,
            version,
            event=change.event,
            at=change.time,
            what=meaning(change),
            todo=TODO[Action.DEAD if cred.health is Health.INVALID else Action.SUSPEND].format(
                name=name
            ),
            confirmed=confirmed,
        )
        if notice.event.value in set(self.settings.notify_events):
            self.outbox.enqueue(notice, channels_for(self.settings, cred.tenant, cred.options))


def _valid_meta(expires_at: datetime | None) -> VersionMeta:
    return VersionMeta(expires_at=expires_at, is_valid=True)


def _reason(change: Change, phrase: str) -> str:
    return f"Meta announced {change.event}: {meaning(change)}; {phrase}"


__all__ = ["DeliveryHandler", "change_of_row", "row_of_change"]
