"""The one clock every sandbox rule reads: tests jump to the day before expiry and past it."""

from __future__ import annotations

import threading
import time


class SandboxClock:
    """Wall time plus an offset, or frozen at a fixed instant.

    ``advance`` moves a frozen clock's instant or a running clock's offset, so it works in both
    modes. Own lock: the clock is read from handlers and written from test threads.
    """

    def __init__(self, *, frozen_at: float | None = None, offset: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._frozen_at = frozen_at
        self._offset = offset

    def now(self) -> float:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self.now()

    def freeze(self, at: float | None = None) -> float:
        """Stop the clock at ``at`` (default: the current sandbox time)."""
        instant = self.now() if at is None else float(at)
        with self._lock:
            self._frozen_at = instant
        return instant

    def unfreeze(self) -> float:
        """Let time run again from the frozen instant."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None
        return self.now()

    def set_offset(self, seconds: float) -> float:
        with self._lock:
            self._frozen_at = None
            self._offset = float(seconds)
        return self.now()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    @property
    def offset(self) -> float:
        return self._offset

    def describe(self) -> dict[str, float | bool]:
        return {"now": self.now(), "frozen": self.frozen, "offset_seconds": self._offset}
