"""Helpers shared by the sandbox tests: a seeded state on a frozen clock, bearer headers.

The live server is ``_live_sandbox.ThreadSandbox`` (shared by every test package).
"""

from __future__ import annotations

import datetime as dt

from _live_sandbox import seeded_state
from permatoken.sandbox import SandboxConfig, SandboxState

#: 2026-07-29 10:00:00 PDT, a Wednesday in daylight-saving time.
SUMMER = dt.datetime(2026, 7, 29, 17, 0, 0, tzinfo=dt.UTC).timestamp()
#: 2026-01-15 10:00:00 PST.
WINTER = dt.datetime(2026, 1, 15, 18, 0, 0, tzinfo=dt.UTC).timestamp()


MSG = "POST /{phone-number-id}/messages"
#: A minimal text message body for ``MSG``.
TEXT = {
    "messaging_product": "whatsapp",
    "to": "16505551234",
    "type": "text",
    "text": {"body": "hello"},
}


def make_state(config: SandboxConfig | None = None, at: float = SUMMER) -> SandboxState:
    return seeded_state(config, at=at)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
