"""PostgreSQL ``LISTEN``: promotions announced by every replica's commits, as they happen.

The notifications are sent inside the promoting transaction (``pg_notify`` on
:data:`~permatoken.store.repository.NOTIFY_CHANNEL`, see :mod:`.versions`), so a listener hears
exactly the promotions that committed. The broker's :class:`~permatoken.server.changes.ChangeHub`
is the usual receiver; the store only needs something with ``publish`` and ``resync``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

from .event_feed import libpq_conninfo
from .repository import NOTIFY_CHANNEL

log = logging.getLogger("permatoken.server.changes")


class PromotionSink(Protocol):
    def publish(self, name: str, version: int) -> None: ...

    def resync(self) -> None: ...


class PostgresListener:
    """``LISTEN permatoken_versions`` on a dedicated psycopg async connection, reconnecting.

    Each promotion goes to ``hub.publish(name, version)``; after every (re)connection
    ``hub.resync()`` catches up on what was missed while the connection was down.
    """

    def __init__(self, url: str, hub: PromotionSink) -> None:
        self.url = url
        self.hub = hub
        self.connected = False

    def _conninfo(self) -> str:
        return libpq_conninfo(self.url)

    async def run(self) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - the postgres extra is missing
            log.error("PostgreSQL LISTEN disabled: pip install 'permatoken[postgres]'")
            return
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo(), autocommit=True, application_name="permatoken-listen"
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connected = True
                    delay = 0.5
                    self.hub.resync()
                    async for note in conn.notifies():
                        self._deliver(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "PostgreSQL LISTEN connection lost (%s); reconnecting in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            finally:
                self.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _deliver(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            name, version = str(data["name"]), int(data["version"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed notification on %s", NOTIFY_CHANNEL)
            return
        self.hub.publish(name, version)


__all__ = ["PostgresListener", "PromotionSink"]
