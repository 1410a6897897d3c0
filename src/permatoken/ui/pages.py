"""The dashboard's pages (GET): fleet overview, needs-a-human queue, one credential, the service.

What a page shows is what the API would show the same key: lists are narrowed to the key's
grants in SQL (store/ui_queries.py), a credential outside them is a 403 before its existence is
revealed (``Broker.check``), and action buttons appear only where ``Principal.may`` says so.
No page ever reads a token value: versions are shown by fingerprint only, sinks by URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import policy as policy_mod
from ..access import Action
from ..models import Health, validate_name
from ..server.errors import ApiError
from ..store import ui_notices as notices
from ..store import ui_queries as q
from .sink_rows import sink_rows
from .timeline import draw
from .web import Ui, Viewer, page, same_sig

_HEALTHS = [h.value for h in Health]


def _filters(request: Request) -> tuple[q.FleetFilter, int]:
    params = request.query_params

    def one(key: str, n: int) -> str | None:
        value = (params.get(key) or "").strip()
        return value[:n] or None

    health = one("health", 20)
    if health is not None and health not in _HEALTHS:
        raise ApiError(422, "invalid_parameter", f"health must be one of: {', '.join(_HEALTHS)}")
    raw_page = params.get("page") or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= 1_000_000:
        raise ApiError(422, "invalid_parameter", "page must be a whole number from 1")
    flt = q.FleetFilter(
        tenant=one("tenant", 64), health=health, issuer=one("issuer", 40), text=one("q", 100)
    )
    return flt, int(raw_page)


async def _fleet(ui: Ui, request: Request, viewer: Viewer) -> dict[str, Any]:
    flt, number = _filters(request)
    size = ui.settings.page_size
    now = ui.broker.engine.clock.now()
    store, grants = ui.broker.store, viewer.principal.grants

    def load() -> q.Fleet:
        summary = ui.summaries.get(
            (grants, flt), lambda: q.fleet_summary(store, flt, grants, now=now)
        )
        rows = q.fleet_page(store, flt, grants, offset=(number - 1) * size, limit=size)
        return q.Fleet(
            summary.counts,
            summary.total,
            rows,
            summary.expiring,
            summary.renewing,
            summary.truncated,
        )

    fleet = await run_in_threadpool(load)
    pages = max(1, -(-fleet.total // size))
    keep = {
        k: v
        for k, v in (
            ("tenant", flt.tenant),
            ("health", flt.health),
            ("issuer", flt.issuer),
            ("q", flt.text),
        )
        if v
    }

    def link(n: int) -> str:
        return "/ui/?" + urlencode(keep | {"page": str(n)})

    return {
        "fleet": fleet,
        "flt": flt,
        "page": number,
        "pages": pages,
        "prev_link": link(number - 1) if number > 1 else None,
        "next_link": link(number + 1) if number < pages else None,
        "healths": _HEALTHS,
        "chart": draw(fleet.expiring, fleet.renewing, fleet.rows, now),
        "query": urlencode(keep | {"page": str(number)}),
    }


@page
async def overview(ui: Ui, request: Request, viewer: Viewer) -> Response:
    ctx = await _fleet(ui, request, viewer)
    return ui.render(request, "overview.html", viewer, **ctx)


@page
async def overview_fragment(ui: Ui, request: Request, viewer: Viewer) -> Response:
    ctx = await _fleet(ui, request, viewer)
    return ui.render(request, "_fleet.html", viewer, **ctx)


@page
async def needs_human(ui: Ui, request: Request, viewer: Viewer) -> Response:
    items = await run_in_threadpool(notices.needs_human, ui.broker.store, viewer.principal.grants)
    return ui.render(request, "needs.html", viewer, items=items)


def _target(ui: Ui, request: Request, viewer: Viewer) -> str:
    name = validate_name(request.path_params["name"])
    ui.broker.check(request, viewer.principal, Action.VIEW, name)
    return name


def _policy_rows(ui: Ui, cred: Any) -> list[dict[str, Any]]:
    from ..store.tenant_policies import get_tenant_policy

    layers = [
        ("settings", ui.broker.settings.policy or {}),
        (f"tenant {cred.tenant}", get_tenant_policy(ui.broker.store, cred.tenant)),
        ("credential", cred.policy or {}),
    ]
    effective = policy_mod.describe(policy_mod.resolve(*(layer for _, layer in layers)))
    rows = []
    for key, value in effective.items():
        source = "default"
        for where, layer in layers:
            if key in layer:
                source = where
        shown = ", ".join(value) if isinstance(value, list) else ("—" if value is None else value)
        rows.append({"key": key, "value": shown, "source": source})
    return rows


def _credential_data(ui: Ui, name: str) -> dict[str, Any]:
    store = ui.broker.store
    status = store.status(name)
    versions = store.versions(name)
    return {
        "status": status,
        "cred": status.credential,
        "versions": sorted(versions, key=lambda v: v.version, reverse=True),
        "events": store.events(name, limit=50),
        "notices": notices.credential_notices(store, name),
        "policy_rows": _policy_rows(ui, status.credential),
        "lease": store.lease_holder(name),
        "sinks": sink_rows(store, name, ui.broker.engine.clock.now()),
    }


@page
async def credential(ui: Ui, request: Request, viewer: Viewer) -> Response:
    name = _target(ui, request, viewer)
    data = await run_in_threadpool(_credential_data, ui, name)
    done = request.query_params.get("done")
    # Only a message this session's own action put in the URL (a link cannot plant text here).
    if done is None or not same_sig(viewer, done, request.query_params.get("sig", "")):
        done = None
    return ui.render(request, "credential.html", viewer, name=name, done=done, **data)


@page
async def credential_fragment(ui: Ui, request: Request, viewer: Viewer) -> Response:
    name = _target(ui, request, viewer)
    data = await run_in_threadpool(_credential_data, ui, name)
    return ui.render(request, "_credential_live.html", viewer, name=name, **data)


@page
async def service(ui: Ui, request: Request, viewer: Viewer) -> Response:
    from .service_data import collect

    data = await run_in_threadpool(collect, ui.broker, viewer)
    return ui.render(request, "service.html", viewer, **data)


@page
async def keys(ui: Ui, request: Request, viewer: Viewer) -> Response:
    from ..server.guards import key_visible

    if not viewer.can("keys"):
        ui.broker.deny(request, viewer.principal, Action.KEYS, None)
    items = [
        k for k in await run_in_threadpool(ui.broker.keys.list) if key_visible(viewer.principal, k)
    ]
    return ui.render(request, "keys.html", viewer, keys=items, created=None)


__all__ = [
    "credential",
    "credential_fragment",
    "keys",
    "needs_human",
    "overview",
    "overview_fragment",
    "service",
]
