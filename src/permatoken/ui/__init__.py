"""The operator dashboard at ``/ui/`` of ``permatoken serve`` (docs/dashboard.md).

Server-rendered (Jinja2) pages over the same broker as the HTTP API: the same keys, roles,
grants, failed-auth throttle, engine calls and audit log. Static files (htmx, CSS, a small
script) ship inside the package; nothing is fetched from elsewhere.

Routes (under ``/ui``)::

    GET  /login            sign-in form (password field ``key``)     POST /login   sign in
    POST /logout           sign out
    GET  /                 fleet overview    GET /fragment  its live part
    GET  /needs-human      the queue with every notice's full text
    GET  /credentials/{name}   one credential   GET /credentials/{name}/fragment
    POST /credentials/{name}/rotate | inspect | revoke-previous     (operator, admin)
    POST /notices/{id}/ack                                            (operator, admin)
    GET  /service          replicas, leases, budgets, backups, audit chain, keys
    GET  /keys  POST /keys  POST /keys/{id}/revoke                    (admin)
    GET  /events           SSE: rotations the key may see
    GET  /static/…         vendored assets
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles


def mount(broker: Any) -> tuple[Mount, Any]:
    """The ``/ui`` mount and the :class:`~.web.Ui` to put on ``app.state.ui``."""
    from pathlib import Path

    from . import actions as a
    from . import live
    from . import pages as p
    from .web import Ui

    ui = Ui(broker)

    routes = [
        Route("/", p.overview, methods=["GET"]),
        Route("/fragment", p.overview_fragment, methods=["GET"]),
        Route("/login", a.login_page, methods=["GET"]),
        Route("/login", a.login, methods=["POST"]),
        Route("/logout", a.logout, methods=["POST"]),
        Route("/needs-human", p.needs_human, methods=["GET"]),
        Route("/service", p.service, methods=["GET"]),
        Route("/keys", p.keys, methods=["GET"]),
        Route("/keys", a.create_key, methods=["POST"]),
        Route("/keys/{key_id:str}/revoke", a.revoke_key, methods=["POST"]),
        Route("/notices/{notice_id:int}/ack", a.acknowledge, methods=["POST"]),
        Route("/events", live.events, methods=["GET"]),
        Route("/credentials/{name:path}/fragment", p.credential_fragment, methods=["GET"]),
        Route("/credentials/{name:path}/rotate", a.rotate, methods=["POST"]),
        Route("/credentials/{name:path}/inspect", a.inspect, methods=["POST"]),
        Route("/credentials/{name:path}/revoke-previous", a.revoke_previous, methods=["POST"]),
        Route("/credentials/{name:path}", p.credential, methods=["GET"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="ui-static"),
    ]
    return Mount("/ui", routes=routes), ui


__all__ = ["mount"]
