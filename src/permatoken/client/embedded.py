"""Embedded mode: the token source reads a local store and reports through the renewal engine.

No server is involved. Rotations made by this process's engine are seen at once (a promotion
listener on the engine's event bus); rotations made by other processes sharing the database are seen by
polling the current version number, a one-row read, every ``poll_interval`` seconds.
Cross-process single-flight is the engine's database lease.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .._exceptions import NotFoundError
from ..vocabulary import ReportStatus
from .errors import CredentialNotFoundError
from .models import CachedToken, ReportAnswer

if TYPE_CHECKING:
    from ..rotation import RenewalEngine
    from ..settings import Settings
    from ..store import Store

__all__ = ["EmbeddedBackend"]

log = logging.getLogger(__name__)

#: Engine outcome (``rotation.Outcome``, by its word: the engine is imported only when used) →
#: report status, the same words as the broker's; tests/client/test_statuses.py checks it is total.
_STATUS: dict[str, ReportStatus] = {
    "rotated": ReportStatus.RENEWED,
    "already_rotated": ReportStatus.NEWER_EXISTS,
    "newer_exists": ReportStatus.NEWER_EXISTS,
    "still_valid": ReportStatus.STILL_VALID,
    "needs_human": ReportStatus.NEEDS_HUMAN,
    "busy": ReportStatus.BUSY,
    "deferred": ReportStatus.FAILED,
    "failed": ReportStatus.FAILED,
}


class EmbeddedBackend:
    """Blocking access to one credential in a local store (thread-safe)."""

    def __init__(
        self,
        name: str,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        engine: RenewalEngine | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        from ..service import build_engine
        from ..settings import load_settings
        from ..store import open_store

        self.name = name
        self.poll_interval = poll_interval
        if store is None and engine is not None:
            store = engine.store
        self._owns_store = store is None
        self._owns_engine = engine is None
        if store is None:
            settings = settings or load_settings()
            store = open_store(settings)
        if engine is None:
            try:
                engine = build_engine(settings or load_settings(), store)
            except BaseException:
                if self._owns_store:
                    store.close()
                raise
        self.store, self.engine = store, engine
        self._changed = threading.Condition()
        self._seen = 0
        self._unsubscribe = engine.events.subscribe_promotions(self._promoted)

    def __repr__(self) -> str:
        return f"EmbeddedBackend(name={self.name!r})"

    def _promoted(self, name: str, version: int) -> None:
        if name == self.name:
            with self._changed:
                self._seen = max(self._seen, version)
                self._changed.notify_all()

    def fetch(self) -> CachedToken:
        try:
            v = self.store.version(self.name)
            value = self.store.reveal(self.name, v.version)
        except NotFoundError as exc:
            raise CredentialNotFoundError(
                f"the local store has no current token for {self.name!r}", name=self.name
            ) from exc
        return CachedToken(self.name, v.version, value, v.meta.expires_at, v.meta.token_type)

    def current_version(self) -> int:
        try:
            return self.store.version(self.name).version
        except NotFoundError as exc:
            raise CredentialNotFoundError(
                f"the local store has no credential {self.name!r}", name=self.name
            ) from exc

    def wait_for_change(self, after_version: int, timeout: float) -> CachedToken | None:
        """Block until a version newer than ``after_version`` is current, or ``timeout``."""
        with self._changed:
            if self._seen <= after_version:
                self._changed.wait(min(timeout, self.poll_interval))
        if self._seen > after_version or self.current_version() > after_version:
            token = self.fetch()
            return token if token.version > after_version else None
        return None

    def report(self, version: int, code: int | None, subcode: int | None) -> ReportAnswer:
        outcome = self.engine.report_failure(
            self.name, version, code=code, subcode=subcode, actor="sdk"
        )
        status = _STATUS.get(outcome.status, ReportStatus.FAILED)
        token = None
        if status.recovered:
            token = self.fetch()
        return ReportAnswer(status, outcome.version, token, outcome.message)

    def close(self) -> None:
        self._unsubscribe()
        if self._owns_engine:
            self.engine.close()
        if self._owns_store:
            self.store.close()
