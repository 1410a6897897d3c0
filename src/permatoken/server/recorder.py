"""Audit without a database write on the read path: records are buffered in memory and
chained in batches by a background task (every ``interval`` seconds or ``batch`` records),
and everything left is written on a clean shutdown. Management actions call
:meth:`AuditRecorder.record_now`, which returns only once the record is stored.

Token reads are coalesced in the buffer: repeated reads of the same version by the same key
from the same address within one flush window become one record with ``count``, ``first_at``
and ``last_at`` (so the chain grows with distinct readers, not with traffic).

If the database is unavailable the buffer grows up to ``max_backlog`` records; beyond that the
broker refuses audited requests (503) rather than serve tokens without a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from ..store.audit import AuditLog, AuditRecord
from .errors import ApiError

log = logging.getLogger("permatoken.server.audit")


class AuditRecorder:
    def __init__(
        self,
        audit: AuditLog,
        *,
        interval: float = 0.5,
        batch: int = 500,
        max_backlog: int = 100_000,
        read_window: float = 5.0,
    ) -> None:
        self.audit = audit
        self.interval = interval
        #: Reads are aggregated per (key, credential, address, version) over this window before
        #: they are written: the audit keeps every read (count, first and last time) while the
        #: database sees one row per window instead of one per read, off the request path.
        self.read_window = read_window
        self._reads_since = time.monotonic()
        self.batch = batch
        self.max_backlog = max_backlog
        self._queue: deque[AuditRecord] = deque()
        # (action, result, actor, name, source, version) -> [count, first, last] (epoch seconds)
        self._reads: dict[tuple[str, str, str, str, str, int], list[float]] = {}
        self._lock: asyncio.Lock | None = None
        self._full: asyncio.Event | None = None
        self.written = 0

    def __len__(self) -> int:
        return len(self._queue) + len(self._reads)

    def add_read(
        self,
        actor: str,
        name: str,
        source: str,
        version: int,
        *,
        action: str = "token.read",
        result: str = "ok",
    ) -> None:
        """A token read, or another use of a token (the hot path: a dictionary update).

        Uses are aggregated per action, result, key, credential, address and version.
        """
        key = (action, result, actor, name, source, version)
        now = time.time()
        entry = self._reads.get(key)
        if entry is None:
            if len(self._reads) >= self.max_backlog:
                raise ApiError(
                    503,
                    "audit_unavailable",
                    "the audit log cannot be written right now; try again shortly",
                )
            self._reads[key] = [1, now, now]
        else:
            entry[0] += 1
            entry[2] = now

    def _drain_reads(self) -> None:
        if not self._reads:
            return
        reads, self._reads = self._reads, {}
        for (action, result, actor, name, source, version), (count, first, last) in sorted(
            reads.items(), key=lambda kv: kv[1][1]
        ):
            detail = {
                "version": version,
                "count": int(count),
                "last_at": datetime.fromtimestamp(last, UTC).isoformat(),
            }
            self._queue.append(
                AuditRecord(
                    actor,
                    action,
                    result,
                    target=name,
                    source=source,
                    detail=detail,
                    at=datetime.fromtimestamp(first, UTC),
                )
            )

    def add(self, record: AuditRecord) -> None:
        if len(self._queue) >= self.max_backlog:
            raise ApiError(
                503,
                "audit_unavailable",
                "the audit log cannot be written right now; try again shortly",
            )
        self._queue.append(record)
        if len(self._queue) >= self.batch and self._full is not None:
            self._full.set()

    async def record_now(self, record: AuditRecord) -> None:
        self.add(record)
        await self.flush()

    async def flush(self, *, reads: bool = True) -> None:
        """Write everything buffered so far (in order, in batches).

        ``reads=False`` leaves aggregated reads in memory until their window is over.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if reads or time.monotonic() - self._reads_since >= self.read_window:
                self._drain_reads()
                self._reads_since = time.monotonic()
            while self._queue:
                chunk = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
                try:
                    await run_in_threadpool(self.audit.append, chunk)
                except BaseException:
                    self._queue.extendleft(reversed(chunk))
                    raise
                self.written += len(chunk)

    async def run(self) -> None:
        self._full = asyncio.Event()
        delay = self.interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), delay)
            self._full.clear()
            try:
                await self.flush(reads=False)
                delay = self.interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(delay * 2, 10.0)
                log.error(
                    "cannot write %d audit records (%s); retrying in %.1f s",
                    len(self._queue),
                    type(exc).__name__,
                    delay,
                )


__all__ = ["AuditRecorder"]
