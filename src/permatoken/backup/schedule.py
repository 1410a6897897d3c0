"""Scheduled backups in ``permatoken serve`` (settings ``backup.every``, ``backup.dir``,
``backup.keep``, ``backup.passphrase_file``).

Time is cut into periods of ``every`` seconds counted from the Unix epoch. At the start of each
period (and once when the service starts, if the current period has none yet) every replica tries
to claim the period in the backup log (:class:`~permatoken.store.backups.BackupLog`, a unique
``slot``): exactly one wins and takes the backup, the others skip it. The winner writes
``permatoken-YYYYMMDDTHHMMSSZ.ptbackup`` into ``dir``, records the outcome, and removes the
oldest scheduled files beyond ``keep``. A failure is recorded and becomes a ``backup_failed``
notice through the notify outbox, delivered like every other notice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from .._exceptions import PermatokenError
from ..notify import notices as nt
from ..notify.delivery import Outbox, channels_for
from ..settings import Settings
from ..store.backups import BackupLog
from ..store.repository import Store
from ..timeutil import Clock
from .create import BackupResult, create_backup
from .sealing import read_passphrase

log = logging.getLogger(__name__)

PATTERN = "permatoken-*.ptbackup"


class _Stopping(Exception):
    """Raised inside a backup when ``serve`` stops: the backup is abandoned cleanly."""


@dataclass(frozen=True, slots=True)
class ScheduledOutcome:
    period: int
    result: BackupResult | None
    error: str | None


def file_name(at: datetime) -> str:
    return f"permatoken-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.ptbackup"


def to_prune(names: list[str], keep: int) -> list[str]:
    """The scheduled backup files beyond the newest ``keep`` (names sort by time)."""
    return sorted(names)[:-keep] if len(names) > keep else []


class BackupSchedule:
    """Takes this replica's share of the scheduled backups; see the module docstring."""

    def __init__(self, settings: Settings, store: Store, *, owner: str, clock: Clock) -> None:
        every = settings.backup.every
        if every is None:
            raise ValueError("backup.every is not set")
        self.settings = settings
        self.store = store
        self.owner = owner
        self.clock = clock
        self.every = every
        self.dir = settings.backup.dir or settings.home / "backups"
        self.keep = settings.backup.keep
        self.log = BackupLog(store)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"BackupSchedule(every={self.every}s, dir={str(self.dir)!r}, keep={self.keep})"

    def period(self, now: datetime) -> int:
        return int(now.timestamp() // self.every)

    def run_once(self) -> ScheduledOutcome | None:
        """Take this period's backup if no replica has; None when another one has it."""
        now = self.clock.now()
        period = self.period(now)
        claim = self.log.claim("scheduled", self.owner, now, slot=f"every-{self.every:g}s/{period}")
        if claim is None:
            log.info("the scheduled backup of period %d is taken by another replica", period)
            return None
        try:
            passphrase = None
            if self.settings.backup.passphrase_file is not None:
                passphrase = read_passphrase(self.settings.backup.passphrase_file)
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            result = create_backup(
                self.store,
                self.dir / file_name(now),
                passphrase=passphrase,
                checkpoint=self._unless_stopping,
            )
        except _Stopping:
            # Shutting down: the partial file is gone, no one needs a notice about it.
            self.log.finish(claim, self.clock.now(), ok=False, error="interrupted: serve stopped")
            log.warning("scheduled backup interrupted: the service is stopping")
            return ScheduledOutcome(period, None, "interrupted")
        except (PermatokenError, OSError) as exc:
            reason = exc.message if isinstance(exc, PermatokenError) else str(exc)
            self.log.finish(claim, self.clock.now(), ok=False, error=reason)
            log.error("scheduled backup failed: %s", reason)
            self._notify(period, reason, now)
            return ScheduledOutcome(period, None, reason)
        self.log.finish(
            claim,
            self.clock.now(),
            ok=True,
            path=str(result.path),
            size=result.size,
            sha256=result.sha256,
            counts=result.counts,
        )
        log.info("scheduled backup written to %s (%d bytes)", result.path, result.size)
        self._prune()
        return ScheduledOutcome(period, result, None)

    def _unless_stopping(self, table: str, rows: int) -> None:
        if rows % 1000 == 0 and self._stop.is_set():
            raise _Stopping

    def _notify(self, period: int, reason: str, now: datetime) -> None:
        if nt.NoticeEvent.BACKUP_FAILED.value not in self.settings.notify_events:
            return
        notice = nt.backup_failed(period % 2**31, reason=reason, directory=str(self.dir), now=now)
        try:
            Outbox(self.store, owner=self.owner, clock=self.clock).enqueue(
                notice, channels_for(self.settings, notice.tenant, {})
            )
        except PermatokenError as exc:
            log.error("could not record the backup-failed notice: %s", exc.message)

    def _prune(self) -> None:
        for name in to_prune([p.name for p in self.dir.glob(PATTERN)], self.keep):
            try:
                (self.dir / name).unlink()
                log.info("removed old scheduled backup %s", name)
            except OSError as exc:
                log.warning("could not remove old backup %s: %s", name, exc.strerror)

    # --- thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except PermatokenError as exc:  # the store is unreachable: try again next period
                log.warning("scheduled backup skipped: %s", exc.message)
            except Exception:
                log.exception("scheduled backup crashed; trying again next period")
            now = self.clock.now().timestamp()
            self._stop.wait(max(1.0, (self.period_start(now) + self.every) - now))

    def period_start(self, ts: float) -> float:
        return (ts // self.every) * self.every

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="permatoken-backup", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def start_scheduled_backups(
    settings: Settings, store: Store, *, owner: str, clock: Clock
) -> BackupSchedule | None:
    """The hook ``serve`` calls: a running schedule, or None when ``backup.every`` is unset."""
    if settings.backup.every is None:
        return None
    schedule = BackupSchedule(settings, store, owner=owner, clock=clock)
    schedule.start()
    log.info("scheduled backups: %r", schedule)
    return schedule


__all__ = ["BackupSchedule", "ScheduledOutcome", "file_name", "start_scheduled_backups", "to_prune"]
