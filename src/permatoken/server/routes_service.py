"""The service itself: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._exceptions import PermatokenError
from ..access import Action
from ..store import Store
from ..store.engine import ping
from .metrics import AGGREGATE, EVERYTHING, View
from .openapi import Op
from .params import broker_of, only_params
from .schemas import HealthOut


async def healthz(request: Request) -> Response:
    return JSONResponse(HealthOut(status="ok", checks={}).model_dump(mode="json"))


async def readyz(request: Request) -> Response:
    """Each check is true or false; a false one has a reason in ``reasons`` (503 then)."""
    b = broker_of(request)
    problems = await run_in_threadpool(_storage_problems, b.store)
    problems["scheduler"] = None if b.scheduler_alive() else "the scheduler is not running"
    if b.listener is not None:
        problems["notifications"] = (
            None if b.listener.connected else "LISTEN to PostgreSQL is not connected"
        )
    checks = {name: problem is None for name, problem in problems.items()}
    ok = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if not ok:  # an extra field (HealthOut allows them): the reason of each failing check
        body["reasons"] = {name: problem for name, problem in problems.items() if problem}
    out = HealthOut.model_validate(body).model_dump(mode="json")
    return JSONResponse(out, status_code=200 if ok else 503)


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
    b = broker_of(request)
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
    # Not an Op: the document describes the operations, built once by the app factory.
    return JSONResponse(request.app.state.openapi)


OPERATIONS: list[Op] = [
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
        HealthOut,
        public=True,
    ),
    Op(
        "get",
        "/readyz",
        "/readyz",
        readyz,
        "Database reachable (and still the file opened), the keys open its data, "
        "scheduler alive; 503 names the failing checks in `reasons`.",
        HealthOut,
        public=True,
        extra_responses={"503": "Not ready."},
    ),
]


__all__ = ["OPERATIONS", "healthz", "metrics", "openapi", "readyz"]
