"""The broker's long-lived parts, shared by every request of one app instance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..access import Action, Principal
from ..events import Unsubscribe
from ..rotation import RenewalEngine, RotationOutcome
from ..settings import Settings
from ..store import Store
from ..store.apikeys import KeyStore
from ..store.audit import AuditLog, AuditRecord
from .auth import Authenticator, FailureLimiter
from .cache import TokenCache
from .changes import ChangeHub
from .errors import ApiError
from .metrics import BrokerMetrics
from .proxies import ClientAddresses
from .recorder import AuditRecorder
from .sessions import KeySessions, Session
from .upstream import UpstreamPool

if TYPE_CHECKING:
    from ..scheduler import Scheduler

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class BrokerConfig:
    """Tunables of the HTTP API (``permatoken serve`` options; defaults are production values)."""

    #: Serve /metrics without an API key (default: any admin, operator or reader key).
    metrics_public: bool = False
    key_cache_ttl: float = 5.0
    token_cache_ttl: float = 300.0
    max_body: int = 64 * 1024
    max_wait: float = 60.0
    keepalive: float = 15.0
    auth_burst: int = 10
    auth_refill: float = 0.2
    audit_interval: float = 0.5
    audit_read_window: float = 10.0
    audit_batch: int = 500
    audit_max_backlog: int = 100_000
    events_poll_interval: float = 1.0
    metrics_per_credential_limit: int = 10_000
    #: With ``metrics_public``: also show credential names to scrapes without a key (opt-in).
    metrics_public_names: bool = False
    #: Addresses or networks of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    #: Threads for engine calls that wait on Meta or token endpoints (server/upstream.py).
    upstream_threads: int = 8
    upstream_per_key: int = 4
    upstream_queue: int = 64

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BrokerConfig:
        """The defaults, with what the settings say about the HTTP API, then ``overrides``."""
        base: dict[str, Any] = {
            "metrics_public": settings.metrics_public,
            "metrics_public_names": settings.metrics_public_names,
            "trusted_proxies": tuple(settings.trusted_proxies),
        }
        return cls(**(base | overrides))


class Broker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: RenewalEngine,
        *,
        scheduler: Scheduler | None = None,
        config: BrokerConfig | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.scheduler = scheduler
        self.config = config or BrokerConfig()
        c = self.config
        self.keys = KeyStore(store)
        self.audit = AuditLog(store)
        self.recorder = AuditRecorder(
            self.audit,
            interval=c.audit_interval,
            batch=c.audit_batch,
            max_backlog=c.audit_max_backlog,
            read_window=c.audit_read_window,
        )
        self.auth = Authenticator(
            self.keys,
            ttl=c.key_cache_ttl,
            limiter=FailureLimiter(c.auth_burst, c.auth_refill),
            on_failure=self._auth_failed,
        )
        self.addresses = ClientAddresses(c.trusted_proxies)
        self.sessions = KeySessions(
            self.keys,
            recheck=c.key_cache_ttl,
            on_end=lambda key_id, reason: self.auth.forget(key_id),
        )
        self.upstream = UpstreamPool(c.upstream_threads, c.upstream_per_key, c.upstream_queue)
        self.cache = TokenCache(store, ttl=c.token_cache_ttl)
        self.metrics = BrokerMetrics(
            store,
            per_credential_limit=c.metrics_per_credential_limit,
            scheduler_lag=self._scheduler_lag,
        )
        self.hub = ChangeHub(
            self.cache, on_promoted=lambda name, version: self.metrics.promotions_seen.inc()
        )
        self.reports: dict[tuple[str, int], asyncio.Future[RotationOutcome]] = {}
        self.listener: Any = None
        self.tasks: list[asyncio.Task[None]] = []
        #: Unsubscribes from the engine's events, while the app runs (see ``app.start``).
        self.subscriptions: list[Unsubscribe] = []
        self._sweeper: asyncio.Task[None] | None = None
        #: Set when the server starts shutting down: waiters return, streams end.
        self.closing = False

    # --- requests ---------------------------------------------------------------------------
    def client(self, request: Request) -> str:
        """The caller's address (X-Forwarded-For only from a trusted proxy)."""
        return self.addresses.of(request.scope)

    @contextlib.contextmanager
    def open_session(self, p: Principal) -> Iterator[Session]:
        """A long-lived request of ``p``: ends (401) when its key is revoked or expires."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(
                self.sessions.run(), name="permatoken-key-sessions"
            )
            self.tasks.append(self._sweeper)  # cancelled with the others at shutdown
        with self.sessions.open(p) as session:
            yield session

    def revoked(self, key_id: str) -> None:
        """A key was revoked here: forget it and end its open requests before answering."""
        self.auth.forget(key_id)
        self.sessions.end(key_id, "revoked")

    async def authenticate(self, request: Request, action: Action) -> Principal:
        """The caller, if its key is valid and its role may do ``action`` at all."""
        p = await self.auth.authenticate(request.headers.get("authorization"), self.client(request))
        if not p.may(action):
            self.deny(request, p, action, None)
        return p

    def check(self, request: Request, p: Principal, action: Action, name: str) -> None:
        """403 unless ``name`` is within the caller's grants (checked before existence: no leak)."""
        if not p.may(action, name):
            self.deny(request, p, action, name)

    def denial(
        self,
        request: Request,
        p: Principal,
        action: Action,
        name: str | None,
        *,
        reason: str | None = None,
    ) -> AuditRecord:
        """The audit record of a refused request."""
        detail: dict[str, str] = {"method": request.method, "route": _route(request)}
        if reason is not None:
            detail["reason"] = reason[:200]
        return AuditRecord(
            p.actor,
            f"denied.{action.value}",
            "forbidden",
            target=name,
            source=self.client(request),
            detail=detail,
        )

    def deny(self, request: Request, p: Principal, action: Action, name: str | None) -> None:
        self.recorder.add(self.denial(request, p, action, name))
        what = f" for {name!r}" if name else ""
        raise ApiError(
            403,
            "forbidden",
            f"this API key ({p.role.value}) may not {action.value.replace('_', ' ')}{what}",
        )

    def _auth_failed(self, client: str, reason: str, key_id: str | None) -> None:
        self.metrics.auth_failures.labels(reason).inc()
        self.recorder.add(
            AuditRecord(
                f"key:{key_id}" if key_id else "anonymous", "auth.failed", reason, source=client
            )
        )

    async def body(self, request: Request, model: type[M], *, optional: bool = False) -> M:
        """Read and validate a JSON body: 413 past ``max_body``, 400 bad JSON, 422 the rest."""
        limit = self.config.max_body
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "payload_too_large", f"request bodies are limited to {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413, "payload_too_large", f"request bodies are limited to {limit} bytes"
                )
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip() and optional:
            raw = b"{}"
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise _validation_error(exc) from None

    # --- lifecycle helpers -------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        """The server is stopping: answer long-polls now and end streams (call in the loop)."""
        self.closing = True
        self.hub.close()

    def _scheduler_lag(self) -> float | None:
        """How far behind the scheduler's last tick was (None without a scheduler or a tick)."""
        report = self.scheduler.last_report if self.scheduler is not None else None
        return report.lag_seconds if report is not None else None

    def scheduler_alive(self) -> bool:
        return self.scheduler is None or self.scheduler.alive


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))[:120]


def _validation_error(exc: ValidationError) -> ApiError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return ApiError(400, "invalid_json", "the request body is not valid JSON")
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "body"
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return ApiError(422, "validation_error", "invalid request body: " + "; ".join(parts) + more)


__all__ = ["Broker", "BrokerConfig"]
