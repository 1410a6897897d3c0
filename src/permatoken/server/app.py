"""The ASGI app: the app factory, its lifespan (scheduler, audit flusher, change feeds) and the
fast path for cached token reads. The routes are declared by resource in ``routes_*``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Route

from ..access import Action
from ..rotation import RenewalEngine
from ..settings import Settings
from ..store import Store
from .broker import Broker, BrokerConfig
from .changes import EventsPoller, PostgresListener
from .errors import HANDLERS
from .openapi import build_document
from .routes_service import openapi
from .routing import operations

log = logging.getLogger("permatoken.server")


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
        await run_in_threadpool(b.scheduler.stop, 30)
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
