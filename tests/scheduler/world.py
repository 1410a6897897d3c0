"""A permatoken store + engine wired to a real sandbox server whose clock both sides share.

The sandbox runs under uvicorn on 127.0.0.1 (``_live_sandbox.ThreadSandbox``, a background
thread); permatoken's clock reads the sandbox's clock (``StateClock``), so advancing the sandbox
moves both ("both clocks advanced together").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _live_sandbox import StateClock, ThreadSandbox, seeded_state
from permatoken._secret import Secret
from permatoken.meta.graph import GraphClient
from permatoken.models import NewCredential, VersionMeta
from permatoken.rotation import RenewalEngine, plan_next
from permatoken.sandbox import SandboxConfig, SandboxState
from permatoken.scheduler import PolicyLayers, Scheduler
from permatoken.settings import Settings
from permatoken.store import Store
from permatoken.timeutil import from_unix

DAY = 86400
START = dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.UTC).timestamp()


@dataclass
class Sent:
    """An in-memory notification channel (Apprise is exercised in tests/notify)."""

    messages: list[tuple[str, str, str]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, url: str, title: str, body: str) -> tuple[bool, str | None]:
        if self.fail:
            return False, "channel unreachable"
        self.messages.append((url, title, body))
        return True, None


@dataclass
class World:
    state: SandboxState
    sandbox: ThreadSandbox
    settings: Settings
    store: Store
    clock: StateClock
    engines: list[RenewalEngine] = field(default_factory=list)
    schedulers: list[Scheduler] = field(default_factory=list)

    @property
    def fixtures(self) -> dict[str, Any]:
        return self.state.fixtures()

    @property
    def app(self) -> dict[str, Any]:
        return self.fixtures["apps"][0]

    def now(self) -> dt.datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.state.clock.advance(seconds)

    def engine(
        self, owner: str = "test-1", *, policies: PolicyLayers | None = None, **kw: Any
    ) -> RenewalEngine:
        """An engine as the runtime builds it: policies resolved in layers from the settings."""
        graph = GraphClient(self.sandbox.url, "v25.0", clock=self.state.clock.now)
        layers = policies if policies is not None else PolicyLayers(self.settings, self.store)
        kw.setdefault("lease_ttl", self.settings.scheduler_lease_ttl)
        engine = RenewalEngine(
            self.store,
            graph,
            clock=self.clock,
            owner=owner,
            policy_resolver=layers.for_credential,
            **kw,
        )
        self.engines.append(engine)
        return engine

    def scheduler(
        self,
        owner: str = "test-1",
        *,
        sender: Callable[..., Any] | None = None,
        settings: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Scheduler:
        conf = self.settings.model_copy(update=settings) if settings else self.settings
        # Built for each other, as permatoken.runtime does: one lease ttl, one policy resolver.
        policies = PolicyLayers(conf, self.store)
        ttl = kw.get("lease_ttl") or conf.scheduler_lease_ttl
        engine = self.engine(owner, policies=policies, lease_ttl=ttl)
        sched = Scheduler(
            conf, self.store, engine, policies=policies, clock=self.clock, sender=sender, **kw
        )
        self.schedulers.append(sched)
        return sched

    def register_app(self) -> str:
        app = self.app
        try:
            self.store.get_app(app["id"])
        except Exception:
            self.store.put_app(app["id"], Secret(app["secret"]))
        return str(app["id"])

    def add(
        self,
        name: str,
        *,
        kind: str = "system_user_60d",
        issuer: str = "meta-system-refresh",
        expires_in: int | None = None,
        options: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
        with_app: bool = True,
        waba: bool = True,
    ) -> str:
        """A credential holding a fresh sandbox token of ``kind``; returns the token value."""
        token = self.state.create_token(kind, expires_in=expires_in)
        app_id = self.register_app() if with_app else None
        meta = VersionMeta(
            token_type=token["type"],
            issued_at=from_unix(token["issued_at"]),
            expires_at=from_unix(token["expires_at"]),
            waba_ids=tuple(token["waba_ids"]),
            is_valid=True,
        )
        spec = NewCredential(
            name=name,
            issuer=issuer,
            app_id=app_id,
            waba_ids=tuple(token["waba_ids"][:1]) if waba else (),
            options=dict(options or {}),
            policy=dict(policy or {}),
        )
        status = self.store.add_credential(spec, Secret(token["value"]), meta)
        assert status.current is not None
        engine = self.engines[0] if self.engines else self.engine()
        due, action = plan_next(
            engine.policy_for(status.credential), status.current, status.credential, self.now()
        )
        self.store.update_credential(name, next_due_at=due, next_action=action)
        return str(token["value"])

    def exchanges(self) -> int:
        return len(self.state.calls("GET /oauth/access_token"))

    def close(self) -> None:
        for s in self.schedulers:
            s.stop(timeout=5)
        for e in self.engines:
            e.close()


def make_state(config: SandboxConfig | None = None) -> SandboxState:
    return seeded_state(config, at=START)
