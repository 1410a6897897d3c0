"""serve: the scheduler and the HTTP API in one process."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer

from .app import app, console, state

log = logging.getLogger("permatoken.serve")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface for the HTTP API.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for the HTTP API.")] = 8700,
    api: Annotated[bool, typer.Option("--api/--no-api", help="Serve the HTTP API.")] = True,
    scheduler: Annotated[bool, typer.Option("--scheduler/--no-scheduler", help="Run the scheduler.")] = True,
    owner: Annotated[str | None, typer.Option(help="Replica name used in leases (default host:pid).")] = None,
) -> None:
    """Keep every credential alive: scheduler + HTTP API + dashboard. Stops cleanly on SIGTERM/SIGINT."""
    from ..service import build_engine

    st = state(ctx)
    settings = st.settings
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .._secret import install_log_redaction

    install_log_redaction()
    store = st.open_store()
    engine = build_engine(settings, store)
    if owner:
        engine.owner = owner
    sched: Any = None
    if scheduler:
        from ..scheduler import Scheduler

        sched = Scheduler(settings, store, engine)
    try:
        engine.resume_all()
        if api:
            import uvicorn

            from ..server import create_app

            asgi = create_app(settings, store, engine, scheduler=sched)
            console.print(f"permatoken serving on http://{host}:{port} (scheduler {'on' if sched else 'off'})")
            uvicorn.run(asgi, host=host, port=port, log_level="warning", lifespan="on")
        elif sched is not None:
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            console.print(f"permatoken scheduler running as {engine.owner} (no API)")
            sched.run_until(stop)
        else:
            console.print("nothing to do: both --no-api and --no-scheduler given")
    finally:
        engine.close()
        store.close()
