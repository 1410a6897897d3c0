"""pywa (a WhatsApp library from PyPI, built on httpx) with PermatokenAuth survives a revocation.

pywa takes ``session=httpx.Client(...)``: give it one with ``auth=PermatokenAuth(source)``. pywa
still wants a ``token`` argument and puts it in the session headers; the auth replaces that
header on every request, so any placeholder works. pywa hard-codes graph.facebook.com, so the
test's transport sends its requests to the sandbox instead.
"""

from __future__ import annotations

from typing import Any

import httpx
from pywa import WhatsApp

from _live_sandbox import ToSandbox
from permatoken.client import PermatokenAuth, TokenSource

from ._support import MINT, NAME, SEND, World


def test_pywa_with_permatoken_auth_sends_and_survives_a_revocation(world: World, store: Any):
    """Send, revoke, send again: the second send succeeds after one mint; pywa never sees a 190."""
    with TokenSource.embedded(NAME, world.settings) as tokens:
        session = httpx.Client(
            auth=PermatokenAuth(tokens), transport=ToSandbox(world.url), timeout=10
        )
        wa = WhatsApp(
            phone_id=world.phone_id,
            token="managed-by-permatoken",
            session=session,
            api_version="25.0",
        )
        first = wa.send_message(to="16505551234", text="before the revocation")
        world.revoke_current(store)
        second = wa.send_message(to="16505551234", text="after the revocation")
        session.close()
        assert tokens.current().version == 2
    assert first.id.startswith("wamid.") and second.id.startswith("wamid.")
    assert world.sandbox.accepted_bodies() == ["before the revocation", "after the revocation"]
    assert world.sandbox.mints() == 1
    assert [c["error_code"] for c in world.sandbox.calls(SEND)] == [None, 190, None]
    assert len(world.sandbox.calls(MINT)) == 1
