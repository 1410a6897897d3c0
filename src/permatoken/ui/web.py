"""The dashboard's request plumbing: sessions from the cookie, CSRF, rendering, errors as pages.

Every page and form goes through :func:`page` or :func:`form`:

1. the ``pt_ui`` cookie names a session (its SHA-256 is looked up in ``ui_sessions``); none,
   idle too long, too old, or its API key revoked/expired → the session ends and the browser is
   sent to ``/ui/login`` (a fragment or form answers 401 instead);
2. a form must carry the session's CSRF token in ``csrf`` (compared in constant time), else 403
   and nothing happens;
3. the handler gets a :class:`Viewer` whose :class:`~permatoken.access.Principal` is
   rebuilt from the key on every request, so a role or grant checks exactly as the API does.

Errors become an HTML page with the right status (never a traceback, never a 500 for bad input).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .._exceptions import NotFoundError, PermatokenError
from .._secret import redact
from ..access import Action, Principal, Role
from ..server.broker import Broker
from ..server.errors import ApiError, status_for
from ..store import ui_sessions as us

log = logging.getLogger("permatoken.ui")

COOKIE = "pt_ui"
_MAX_FORM = 64 * 1024
LOGIN_COOKIE = "pt_ui_login"
TEMPLATES = Path(__file__).parent / "templates"
#: Nothing but our own files: no inline script, no third party, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def wall_now() -> datetime:
    """Sessions follow the wall clock (the engine's may be the sandbox's, for time travel)."""
    return datetime.now(UTC)


@dataclass
class Viewer:
    """The signed-in caller of one request."""

    principal: Principal
    session: us.UiSession

    @property
    def role(self) -> str:
        return self.principal.role.value

    def can(self, action: str, name: str | None = None) -> bool:
        return self.principal.may(Action(action), name)


class Ui:
    """The dashboard's long-lived parts: templates and settings, beside the API's broker."""

    def __init__(self, broker: Broker) -> None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        self.broker = broker
        self.settings = broker.settings.ui
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html", "svg"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        from . import filters
        from .summary import SummaryCache

        self.env.filters.update(filters.FILTERS)
        self.summaries = SummaryCache(self.settings.summary_ttl)

    def render(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None = None,
        *,
        http_status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request,
            viewer=viewer,
            csrf=viewer.session.csrf_token if viewer else None,
            now=self.broker.engine.clock.now(),
            **context,
        )
        return HTMLResponse(html, status_code=http_status, headers=SECURITY_HEADERS)

    def error(self, request: Request, status: int, message: str, viewer: Viewer | None) -> Response:
        if request.headers.get("hx-request") or request.url.path.endswith("/fragment"):
            return HTMLResponse(
                f'<p class="error" role="alert">{_esc(redact(message))}</p>',
                status_code=status,
                headers=SECURITY_HEADERS,
            )
        return self.render(
            request,
            "error.html",
            viewer,
            http_status=status,
            status_code=status,
            message=redact(message),
        )

    # --- sessions ---------------------------------------------------------------------------
    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in caller, or None (and the session ended) if there is none any more."""
        sid = request.cookies.get(COOKIE)
        if not sid or len(sid) > 100:
            return None
        store = self.broker.store
        session = await run_in_threadpool(us.load_session, store, sid)
        if session is None:
            return None
        now = wall_now()
        idle = (now - session.last_seen_at).total_seconds()
        age = (now - session.created_at).total_seconds()
        key = None
        if idle <= self.settings.session_idle and age <= self.settings.session_max:
            try:
                key = await run_in_threadpool(self.broker.keys.get, session.key_id)
            except NotFoundError:
                key = None
        if key is None or not key.usable_at(now) or key.role is Role.APP:
            await run_in_threadpool(us.end_session, store, session.id_hash)
            return None
        # Touch at most a few times per idle period: one write, not one per request.
        if idle > min(30.0, self.settings.session_idle / 4):
            await run_in_threadpool(us.touch_session, store, session.id_hash, now)
        return Viewer(Principal(key.id, key.role, key.grants, key.expires_at), session)

    def cookie_secure(self, request: Request) -> bool:
        return request.url.scheme == "https"


def _esc(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def sign(viewer: Viewer, text: str) -> str:
    """An HMAC of ``text`` under the session's CSRF token (for messages carried in a URL)."""
    key = viewer.session.csrf_token.encode()
    return hmac.new(key, text.encode(), "sha256").hexdigest()[:32]


def same_sig(viewer: Viewer, text: str, sig: str) -> bool:
    return hmac.compare_digest(sign(viewer, text).encode(), sig.encode())


Handler = Callable[[Ui, Request, Viewer], Awaitable[Response]]


def _ui(request: Request) -> Ui:
    return request.app.state.ui  # type: ignore[no-any-return]


def page(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A GET page or fragment for a signed-in caller."""

    async def endpoint(request: Request) -> Response:
        ui = _ui(request)
        viewer = await ui.viewer(request)
        if viewer is None:
            if request.headers.get("hx-request") or request.url.path.endswith("/fragment"):
                return ui.error(request, 401, "your session has ended: sign in again", None)
            target = quote(request.url.path, safe="/")
            return RedirectResponse(f"/ui/login?next={target}", status_code=303)
        return await _guarded(ui, request, viewer, fn)

    return endpoint


def form(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A state-changing POST: signed in, and the session's CSRF token in the form."""

    async def endpoint(request: Request) -> Response:
        ui = _ui(request)
        viewer = await ui.viewer(request)
        if viewer is None:
            return ui.error(
                request, 401, "your session has ended: sign in again at /ui/login", None
            )
        data = await _form(request)
        sent = data.get("csrf", "")
        if not hmac.compare_digest(sent.encode(), viewer.session.csrf_token.encode()):
            ui.broker.recorder.add(
                ui.broker.denial(request, viewer.principal, Action.VIEW, None, reason="ui csrf")
            )
            return ui.error(
                request,
                403,
                "the form's security token is missing or wrong: reload the page and try again",
                viewer,
            )
        request.state.form = data
        return await _guarded(ui, request, viewer, fn)

    return endpoint


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (what our forms send), at most 64 KiB."""
    from urllib.parse import parse_qsl

    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_FORM:
            return {}
        chunks.append(chunk)
    try:
        pairs = parse_qsl(b"".join(chunks).decode("utf-8"), max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


async def _guarded(ui: Ui, request: Request, viewer: Viewer | None, fn: Any) -> Response:
    try:
        return await (fn(ui, request, viewer) if viewer is not None else fn(ui, request))  # type: ignore[no-any-return]
    except ApiError as exc:
        return ui.error(request, exc.status, exc.message, viewer)
    except PermatokenError as exc:
        status = status_for(exc)
        text = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, redact(exc.message))
        return ui.error(request, status, text, viewer)


__all__ = ["COOKIE", "CSP", "Ui", "Viewer", "form", "page", "same_sig", "sign", "wall_now"]
