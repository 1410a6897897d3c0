"""``GET /ui/events``: the change stream (server/changes.py) for a signed-in browser, as SSE.

Each promotion the key may see is sent as ``event: rotation`` with ``{"name", "version"}`` (no
token, ever); ``static/live.js`` then refetches the fragments that show that credential. The
stream ends when the key is revoked or expires (the API's key sessions), when the dashboard
session ends (checked at every keep-alive), or when the server shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..server.sessions import rotation_events
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

    async def idle() -> str | None:
        if await run_in_threadpool(_still_valid, ui, session_id):
            return None
        return 'event: ended\ndata: {"reason":"session"}\n\n'

    async def stream() -> AsyncIterator[str]:
        try:
            with b.open_session(p) as session:
                events = rotation_events(
                    session,
                    sub.queue,
                    keepalive=keepalive,
                    closing=lambda: b.closing,
                    ended=lambda exc: 'event: ended\ndata: {"reason":"key"}\n\n',
                    idle=idle,
                )
                async for event in events:
                    yield event
        finally:
            b.hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


__all__ = ["events"]
