"""serve: the scheduler and the HTTP API in one process."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Annotated, Any

import typer

from .app import app, console, listen_error, state

log = logging.getLogger("permatoken.serve")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface for the HTTP API.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port for the HTTP API (0 picks a free one).")
    ] = 8700,
    api: Annotated[bool, typer.Option("--api/--no-api", help="Serve the HTTP API.")] = True,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run the scheduler.")
    ] = True,
    owner: Annotated[
        str | None, typer.Option(help="Replica name used in leases (default host:pid).")
    ] = None,
    metrics_public: Annotated[
        bool,
        typer.Option(
            "--metrics-public",
            help="Serve /metrics without an API key: totals only, no credential names.",
        ),
    ] = False,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log every request line (never headers; access_token values in queries redacted).",
        ),
    ] = False,
) -> None:
    """Keep every credential alive: scheduler + HTTP API. Stops cleanly on SIGTERM/SIGINT."""
    from ..runtime import build_runtime

    st = state(ctx)
    settings = st.settings
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .._secret import install_log_redaction

    install_log_redaction()
    # Every Graph request at INFO would drown what matters (renewals, failures, notices).
    for noisy in ("httpx", "httpcore", "alembic", "apprise"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    store = st.open_store()
    try:
        # A wrong key must not start, report ready and then fail every read: prove it now.
        store.require_keys()
        rt = build_runtime(settings, store, owner=owner, scheduler=scheduler, background=scheduler)
    except BaseException:
        store.close()
        raise
    engine, sched = rt.engine, rt.scheduler
    try:
        # Scheduled backups and sinks are background work, like the scheduler's.
        rt.start_background()
        engine.resume_all()
        if api:
            _serve_api(
                settings,
                store,
                engine,
                sched,
                host,
                port,
                metrics_public=metrics_public,
                access_log=access_log,
            )
        elif sched is not None:
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            console.print(f"permatoken scheduler running as {engine.owner} (no API)")
            sched.run_until(stop)
        else:
            console.print("nothing to do: both --no-api and --no-scheduler given")
    finally:
        rt.close()
        store.close()


def _serve_api(
    settings: Any,
    store: Any,
    engine: Any,
    sched: Any,
    host: str,
    port: int,
    *,
    metrics_public: bool,
    access_log: bool,
) -> None:
    import uvicorn

    from ..server import BrokerConfig, create_app

    asgi = create_app(
        settings,
        store,
        engine,
        scheduler=sched,
        config=BrokerConfig.from_settings(
            settings, metrics_public=metrics_public or settings.metrics_public
        ),
    )
    broker = asgi.state.broker
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # TCP, and without it every response with a body waits ~40 ms for delayed ACKs (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise listen_error(exc, "serve", host, port) from None
    sock.listen(2048)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        asgi,
        log_level="warning",
        lifespan="on",
        access_log=access_log,
        timeout_graceful_shutdown=5,
        server_header=False,
        # The app reads X-Forwarded-For itself, from PERMATOKEN_TRUSTED_PROXIES only: uvicorn's
        # default would believe it from 127.0.0.1 (a local caller could forge its address).
        proxy_headers=False,
    )
    if access_log:
        from ..proxy.keys import AccessLogRedaction

        # uvicorn sets its access logger to log_level (warning), which would hide every line.
        access = logging.getLogger("uvicorn.access")
        access.setLevel(logging.INFO)
        access.addFilter(AccessLogRedaction())
    server = uvicorn.Server(config)
    original = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        # Long-polls and streams would hold the shutdown open: release them first.
        loop = broker.hub.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(broker.begin_shutdown)
        original(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    where = f"[{host}]" if ":" in host else host
    console.print(
        f"permatoken serving on http://{where}:{bound} (scheduler {'on' if sched else 'off'})"
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
