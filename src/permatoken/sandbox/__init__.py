"""A faithful local imitation of the Meta Graph API endpoints permatoken depends on.

Public and usable by anyone's integration tests: ``create_app`` for in-process use with
``httpx.ASGITransport``, ``serve`` for a real server. See ``docs/sandbox.md``.
"""

from permatoken.sandbox.app import create_app
from permatoken.sandbox.auth import appsecret_proof
from permatoken.sandbox.clock import SandboxClock
from permatoken.sandbox.config import SandboxConfig
from permatoken.sandbox.dispatch import DroppedConnection
from permatoken.sandbox.models import TOKEN_KINDS
from permatoken.sandbox.routing import ENDPOINTS
from permatoken.sandbox.server import serve
from permatoken.sandbox.signing import AccountEvent
from permatoken.sandbox.state import SandboxState

__all__ = [
    "ENDPOINTS",
    "TOKEN_KINDS",
    "AccountEvent",
    "DroppedConnection",
    "SandboxClock",
    "SandboxConfig",
    "SandboxState",
    "appsecret_proof",
    "create_app",
    "serve",
]
