"""``create_app``: the sandbox as one Starlette application, in-process or under uvicorn."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from permatoken.sandbox import control, routes_signup
from permatoken.sandbox.config import SandboxConfig
from permatoken.sandbox.dispatch import GraphDispatcher
from permatoken.sandbox.state import SandboxState


def create_app(state: SandboxState | None = None, config: SandboxConfig | None = None) -> Starlette:
    """Build the sandbox app; an empty new state is seeded with the default world.

    ``app.state.sandbox`` is the :class:`SandboxState`. A given ``config`` replaces the state's.
    """
    if state is None:
        state = SandboxState(config=config)
        state.seed()
    elif config is not None:
        with state.lock:
            state.config = config
    app = Starlette(
        routes=[
            Mount("/_sandbox", routes=[*control.routes(), *routes_signup.routes()]),
            # Every other path is the imitated Graph API (versioned or not) or a BSP stand-in.
            Route("/{path:path}", GraphDispatcher(state)),
        ]
    )
    app.state.sandbox = state
    return app
