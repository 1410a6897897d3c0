"""The ASGI app: routes, lifespan (scheduler, audit flusher, change feeds), health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._exceptions import PermatokenError
from ..access import Action
from ..providers import api as providers_api
from ..rotation import RenewalEngine
from ..settings import Settings
from ..store import Store
from ..store.engine import ping
from . import routes_history as h
from . import routes_keys as k
from . import routes_manage as m
from . import routes_tokens as t
from . import schemas as s
from .broker import Broker, BrokerConfig
from .changes import EventsPoller, PostgresListener
from .errors import HANDLERS
from .metrics import AGGREGATE, EVERYTHING, View
from .openapi import LIMIT, NAME, Op, Param, build_document
from .routes_tokens import only_params

log = logging.getLogger("permatoken.server")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "checks": {}})


async def readyz(request: Request) -> Response:
    """Each check is true or false; a false one has a reason in ``reasons`` (503 then)."""
    b: Broker = request.app.state.broker
    problems = await run_in_threadpool(_storage_problems, b.store)
    problems["scheduler"] = None if b.scheduler_alive() else "the scheduler is not running"
    if b.listener is not None:
        problems["notifications"] = (
            None if b.listener.connected else "LISTEN to PostgreSQL is not connected"
        )
    checks = {name: problem is None for name, problem in problems.items()}
    ok = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if not ok:
        body["reasons"] = {name: problem for name, problem in problems.items() if problem}
    return JSONResponse(body, status_code=200 if ok else 503)


def _storage_problems(store: Store) -> dict[str, str | None]:
    """The database answers (and is the file this process opened); the keys open its data."""
    problem = store.unavailable()
    if problem is None:
        try:
            with store.read() as conn:
                ping(conn)
        except PermatokenError as exc:
            problem = exc.message
        except Exception as exc:
            problem = f"the database check failed ({type(exc).__name__})"
    if problem is not None:
        return {"database": problem, "key": "not checked: the database is unavailable"}
    try:
        keys = store.key_problems()
    except PermatokenError as exc:
        return {"database": None, "key": f"not checked: {exc.message}"}
    shown = "; ".join(str(p) for p in keys[:3])
    return {"database": None, "key": f"{store.keyring.source}: {shown}" if keys else None}


async def metrics(request: Request) -> Response:
    b: Broker = request.app.state.broker
    if b.config.metrics_public and "authorization" not in request.headers:
        view = EVERYTHING if b.config.metrics_public_names else AGGREGATE
    else:
        p = await b.authenticate(request, Action.METRICS)
        view = EVERYTHING if not p.grants else View(sees=p.sees, grants=p.grants)
    only_params(request)
    b.metrics.audit_backlog.set(len(b.recorder))
    body = await run_in_threadpool(b.metrics.render, view)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def operations() -> list[Op]:
    int_q = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    view, manage = "reader, operator, admin", "operator, admin"
    return [
        # The hot path first: Starlette tries routes in order.
        Op(
            "get",
            "/v1/tokens/{name}",
            "/v1/tokens/{name:path}",
            t.get_token,
            "Current token of a credential (app with a matching grant, admin). "
            "Long-poll with after_version + wait.",
            s.TokenOut,
            params=(
                NAME,
                Param("after_version", "query", int_q, "Answer only once the version is greater."),
                Param(
                    "wait",
                    "query",
                    {"type": "number", "minimum": 0, "maximum": 60},
                    "Seconds to wait (≤ 60).",
                ),
                Param(
                    "If-None-Match",
                    "header",
                    {"type": "string"},
                    'e.g. "v3": 304 if still current.',
                ),
            ),
            extra_responses={"304": "Not modified: the version is still the one given."},
        ),
        Op(
            "get",
            "/v1/stream",
            "/v1/stream",
            t.stream,
            "Server-Sent Events: `event: rotation` for every promotion the key may read.",
            None,
            params=(
                Param(
                    "names",
                    "query",
                    {"type": "string", "minLength": 1},
                    "Comma-separated names to follow.",
                ),
            ),
            media="text/event-stream",
        ),
        Op(
            "post",
            "/v1/reports",
            "/v1/reports",
            t.report,
            "Report that a token version failed (e.g. Graph error 190).",
            s.ReportOut,
            body=s.ReportIn,
        ),
        Op(
            "get",
            "/v1/credentials",
            "/v1/credentials",
            m.list_credentials,
            f"List credential status ({view}).",
            s.CredentialListOut,
            params=(
                Param("tenant", "query", {"type": "string", "minLength": 1, "maxLength": 64}),
                Param(
                    "health",
                    "query",
                    {
                        "type": "string",
                        "enum": [
                            "ok",
                            "expiring",
                            "renewing",
                            "failing",
                            "needs_human",
                            "expired",
                            "invalid",
                        ],
                    },
                ),
                LIMIT,
                Param("offset", "query", int_q),
                Param(
                    "after",
                    "query",
                    {"type": "string", "minLength": 1, "maxLength": 200},
                    "The last name of the previous page (see `next`).",
                ),
            ),
        ),
        Op(
            "post",
            "/v1/credentials",
            "/v1/credentials",
            m.create_credential,
            f"Add a credential ({manage}).",
            s.CredentialCreatedOut,
            status=201,
            body=s.CredentialIn,
        ),
        Op(
            "post",
            "/v1/credentials/{name}/rotate",
            "/v1/credentials/{name:path}/rotate",
            m.rotate_credential,
            f"Rotate now ({manage}).",
            s.OutcomeOut,
            body=s.RotateIn,
            body_required=False,
            params=(NAME,),
        ),
        Op(
            "post",
            "/v1/credentials/{name}/revoke",
            "/v1/credentials/{name:path}/revoke",
            m.revoke_credential,
            f"Revoke a version upstream and locally ({manage}).",
            s.VersionOut,
            body=s.RevokeIn,
            body_required=False,
            params=(NAME,),
        ),
        Op(
            "post",
            "/v1/credentials/{name}/inspect",
            "/v1/credentials/{name:path}/inspect",
            m.inspect_credential,
            f"Ask Meta about a version ({manage}).",
            s.InspectionOut,
            body=s.InspectIn,
            body_required=False,
            params=(NAME,),
        ),
        Op(
            "get",
            "/v1/credentials/{name}",
            "/v1/credentials/{name:path}",
            m.get_credential,
            f"One credential with its versions ({view}).",
            s.CredentialDetailOut,
            params=(NAME,),
        ),
        Op(
            "patch",
            "/v1/credentials/{name}",
            "/v1/credentials/{name:path}",
            m.patch_credential,
            f"Change settings ({manage}).",
            s.CredentialStatusOut,
            body=s.CredentialPatch,
            params=(NAME,),
        ),
        Op(
            "delete",
            "/v1/credentials/{name}",
            "/v1/credentials/{name:path}",
            m.delete_credential,
            f"Remove a credential ({manage}).",
            None,
            status=204,
            params=(NAME,),
        ),
        Op(
            "get",
            "/v1/apps",
            "/v1/apps",
            m.list_apps,
            f"Registered Meta apps ({view}).",
            s.AppListOut,
        ),
        Op(
            "post",
            "/v1/apps",
            "/v1/apps",
            m.put_app,
            f"Register or update a Meta app ({manage}).",
            s.AppOut,
            body=s.AppIn,
        ),
        Op(
            "post",
            "/v1/onboarding/embedded-signup",
            "/v1/onboarding/embedded-signup",
            providers_api.embedded_signup,
            f"Onboard a client from its Embedded Signup code ({manage}, grant on the tenant); "
            "201 created, 200 when the code was onboarded before (same answer).",
            providers_api.EmbeddedSignupOut,
            status=201,
            body=providers_api.EmbeddedSignupIn,
        ),
        Op(
            "get",
            "/v1/events",
            "/v1/events",
            h.list_events,
            f"Credential events, newest first ({view}).",
            s.EventListOut,
            params=(
                Param("name", "query", {"type": "string", "minLength": 1, "maxLength": 200}),
                LIMIT,
            ),
        ),
        Op(
            "get",
            "/v1/audit",
            "/v1/audit",
            h.list_audit,
            f"Audit records, newest first ({view}).",
            s.AuditListOut,
            params=(
                LIMIT,
                Param("before", "query", {"type": "integer", "minimum": 1}),
                Param("action", "query", {"type": "string", "minLength": 1, "maxLength": 60}),
                Param("target", "query", {"type": "string", "minLength": 1, "maxLength": 200}),
            ),
        ),
        Op("get", "/v1/keys", "/v1/keys", k.list_keys, "API keys (admin).", s.KeyListOut),
        Op(
            "post",
            "/v1/keys",
            "/v1/keys",
            k.create_key,
            "Create an API key; the key is in the answer, once (admin).",
            s.KeyCreatedOut,
            status=201,
            body=s.KeyIn,
        ),
        Op(
            "delete",
            "/v1/keys/{key_id}",
            "/v1/keys/{key_id}",
            k.revoke_key,
            "Revoke an API key (admin).",
            s.KeyOut,
            params=(
                Param(
                    "key_id",
                    "path",
                    {"type": "string", "minLength": 1, "maxLength": 24},
                    required=True,
                ),
            ),
        ),
        Op(
            "get",
            "/metrics",
            "/metrics",
            metrics,
            "Prometheus metrics (reader, operator, admin unless public); per-credential "
            "series only for names within the key's grants, none without a key.",
            None,
            media="text/plain",
        ),
        Op(
            "get",
            "/healthz",
            "/healthz",
            healthz,
            "The process is alive.",
            s.HealthOut,
            public=True,
        ),
        Op(
            "get",
            "/readyz",
            "/readyz",
            readyz,
            "Database reachable (and still the file opened), the keys open its data, "
            "scheduler alive; 503 names the failing checks in `reasons`.",
            s.HealthOut,
            public=True,
            extra_responses={"503": "Not ready."},
        ),
    ]


_TOKENS = "/v1/tokens/"
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


class BrokerApp(Starlette):
    """Starlette plus a fast path for the hottest request: a cached token for a cached key.

    ``GET /v1/tokens/{name}`` without query or ``If-None-Match``, whose key and token are both
    in memory, is answered here without the router; everything else (misses, errors, long-polls)
    takes the ordinary route, which gives the same answer.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            path: str = scope["path"]
            if path.startswith(_TOKENS):
                entry = self._cached_read(scope, path[len(_TOKENS) :])
                if entry is not None:
                    headers = [
                        *_JSON_HEADERS,
                        (b"etag", entry.etag.encode()),
                        (b"content-length", str(len(entry.body)).encode()),
                    ]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": entry.body})
                    return
        await super().__call__(scope, receive, send)

    def _cached_read(self, scope: Any, name: str) -> Any:
        b: Broker = self.state.broker
        auth = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value
            elif key == b"if-none-match":
                return None
        if auth is None:
            return None
        p = b.auth.cached(auth)
        if p is None or not p.may(Action.READ_TOKEN, name):
            return None
        entry = b.cache.peek(name)
        if entry is None or len(b.recorder) >= b.recorder.max_backlog:
            return None
        b.recorder.add_read(p.actor, name, b.addresses.of(scope), entry.version)
        b.metrics.reads_ok.inc()
        return entry


def create_app(
    settings: Settings,
    store: Store,
    engine: RenewalEngine,
    *,
    scheduler: Any = None,
    config: BrokerConfig | None = None,
) -> BrokerApp:
    """The broker's ASGI app. Nothing starts until the lifespan does."""
    broker = Broker(settings, store, engine, scheduler=scheduler, config=config)
    ops = operations()
    routes: list[BaseRoute] = [
        Route(op.route, op.endpoint, methods=[op.method.upper()]) for op in ops
    ]
    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    # Meta's webhooks and deauthorize callback (public, signed; docs/providers.md).
    from ..providers.handling import DeliveryHandler
    from ..providers.routes import MetaWebhooks

    deliveries = DeliveryHandler(
        settings, store, engine, on_change=broker.hub.changed_threadsafe, owner=engine.owner
    )
    routes.extend(MetaWebhooks(settings, store, deliveries).routes())
    if settings.proxy.enabled:  # /graph/{credential-name}/-/… (docs/proxy.md)
        from ..proxy import GraphProxy

        routes.append(GraphProxy(broker, settings.proxy, settings.graph_url).route())
    ui: Any = None
    if settings.ui.enabled:  # the dashboard at /ui/ (docs/dashboard.md)
        from ..ui import mount

        ui_mount, ui = mount(broker)
        routes.append(ui_mount)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await start(broker)
        deliveries.start()
        try:
            yield
        finally:
            await run_in_threadpool(deliveries.stop)
            await stop(broker)

    app = BrokerApp(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.broker = broker
    app.state.openapi = build_document(ops)
    app.state.ui = ui
    return app


async def start(b: Broker) -> None:
    loop = asyncio.get_running_loop()
    b.closing = False
    b.hub.bind(loop)
    # Subscribed while the app runs: the engine outlives it (tests build many apps on one).
    b.subscriptions = [
        b.engine.events.subscribe_promotions(b.hub.publish_threadsafe),
        b.engine.events.subscribe(b.metrics.on_engine_event),
    ]
    tasks = [asyncio.create_task(b.recorder.run(), name="permatoken-audit")]
    poller = EventsPoller(b.store, b.hub, interval=b.config.events_poll_interval)
    tasks.append(asyncio.create_task(poller.run(), name="permatoken-events"))
    if b.store.dialect == "postgresql":
        b.listener = PostgresListener(b.store.url, b.hub)
        tasks.append(asyncio.create_task(b.listener.run(), name="permatoken-listen"))
    b.tasks = tasks
    if b.scheduler is not None:
        b.scheduler.start()
    # Everything built at start-up lives as long as the process: keep it out of the cyclic
    # collector's full passes, which otherwise stall the event loop for milliseconds.
    gc.collect()
    gc.freeze()


async def stop(b: Broker) -> None:
    b.closing = True
    b.hub.close()
    if b.scheduler is not None:
        await run_in_threadpool(lambda: b.scheduler.stop(timeout=30))
    for task in b.tasks:
        task.cancel()
    for task in b.tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for unsubscribe in b.subscriptions:
        unsubscribe()
    b.subscriptions = []
    try:
        await b.recorder.flush()
    except Exception as exc:
        log.error(
            "could not write %d audit records at shutdown: %s", len(b.recorder), type(exc).__name__
        )


__all__ = ["Broker", "BrokerConfig", "create_app", "operations"]
