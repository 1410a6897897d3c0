"""``GET /ui/events``: the change stream (server/changes.py) for a signed-in browser, as SSE.

Each promotion the key may see is sent as ``event: rotation`` with ``{"name", "version"}`` (no
token, ever); ``static/live.js`` then refetches the fragments that show that credential. The
stream ends when the key is revoked or expires (the API's key sessions), when the dashboard
session ends (checked at every keep-alive), or when the server shuts down.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..server.errors import ApiError
from ..server.sessions import first
from ..store import ui_sessions as us
from .web import COOKIE, Ui, Viewer, page, wall_now


def _still_valid(ui: Ui, session_id: str) -> bool:
    s = us.load_session(ui.broker.store, session_id)
    if s is None:
        return False
    now = wall_now()
    return (now - s.last_seen_at).total_seconds() <= ui.settings.session_idle and (
        now - s.created_at
    ).total_seconds() <= ui.settings.session_max


@page
async def events(ui: Ui, request: Request, viewer: Viewer) -> Response:
    b = ui.broker
    p = viewer.principal
    sub = b.hub.subscribe(p.sees)
    session_id = request.cookies.get(COOKIE, "")
    keepalive = min(b.config.keepalive, max(1.0, ui.settings.session_idle / 2))

    async def stream() -> AsyncIterator[str]:
        getter: asyncio.Future[tuple[str, int] | None] | None = None
        try:
            with b.open_session(p) as session:
                yield "retry: 3000\n: connected\n\n"
                while not b.closing:
                    if getter is None:
                        getter = asyncio.ensure_future(sub.queue.get())
                    try:
                        item = await first(session, getter, keepalive)
                    except ApiError:
                        yield 'event: ended\ndata: {"reason":"key"}\n\n'
                        return
                    if not getter.done():
                        if not await run_in_threadpool(_still_valid, ui, session_id):
                            yield 'event: ended\ndata: {"reason":"session"}\n\n'
                            return
                        yield ": keep-alive\n\n"
                        continue
                    getter = None
                    if item is None:
                        return
                    data = json.dumps({"name": item[0], "version": item[1]}, separators=(",", ":"))
                    yield f"event: rotation\ndata: {data}\n\n"
        finally:
            if getter is not None:
                getter.cancel()
            b.hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


__all__ = ["events"]
