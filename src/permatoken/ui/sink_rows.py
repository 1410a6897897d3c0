"""The credential page's sinks: where its current token goes and how far behind each one is.

Read-only over :class:`~permatoken.store.sinks.SinkTable`. A sink URL (``aws-sm://SECRET-ID``,
``file:///PATH``) names a destination, not a secret, and is shown as stored. The last error is
the text the sink worker stored — a :class:`~permatoken.PermatokenError` message or an exception
type, never the exception's own text — and is passed through :func:`redact` once more here so
a value that somehow reached the table (an older writer, a hand edit) is masked on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .._secret import redact
from ..store.repository import Store
from ..store.sinks import SinkRecord, SinkTable
from .filters import span, when


@dataclass(frozen=True, slots=True)
class SinkRow:
    url: str
    kind: str
    delivered: str
    current: str
    behind: bool
    #: ``up to date``, ``behind 2 h 30 min`` or ``no current version``.
    lag: str
    lag_seconds: int
    attempts: int
    last_error: str | None
    next_attempt: str


def _row(rec: SinkRecord, now: datetime) -> SinkRow:
    if rec.current_version is None:
        lag = "no current version"
    elif rec.behind:
        lag = f"behind {span(rec.lag_seconds(now))}"
    else:
        lag = "up to date"
    if not rec.behind:
        next_attempt = "—"
    elif rec.next_attempt_at is None or rec.next_attempt_at <= now:
        next_attempt = "due now"
    else:
        next_attempt = when(rec.next_attempt_at, now)
    return SinkRow(
        url=rec.url,
        kind=rec.url.split("://", 1)[0],
        delivered="none" if rec.delivered_version is None else f"v{rec.delivered_version}",
        current="none" if rec.current_version is None else f"v{rec.current_version}",
        behind=rec.behind,
        lag=lag,
        lag_seconds=round(rec.lag_seconds(now)),
        attempts=rec.attempts,
        last_error=redact(rec.last_error) if rec.last_error else None,
        next_attempt=next_attempt,
    )


def sink_rows(store: Store, name: str, now: datetime) -> list[SinkRow]:
    """``name``'s sinks, by URL (the caller has checked the viewer may see ``name``)."""
    return [_row(rec, now) for rec in SinkTable(store).all(name)]


__all__ = ["SinkRow", "sink_rows"]
