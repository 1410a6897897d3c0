"""Forwarding and recovery through the proxy (broker and sandbox in threads)."""

from __future__ import annotations

import pytest

from .conftest import Proxied


@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_send_goes_through_and_a_revocation_is_recovered_with_one_mint(proxied: Proxied):
    """Send, revoke, send: both accepted once, one mint, the client never sees the 190."""
    c = proxied.client()
    first = proxied.send(c, "before")
    assert first.status_code == 200, first.text
    proxied.revoke()
    second = proxied.send(c, "after")
    assert second.status_code == 200, second.text
    assert second.json()["messages"][0]["id"].startswith("wamid.")
    assert proxied.accepted() == ["before", "after"]
    assert proxied.mints() == 1
    assert proxied.sends() == [None, 190, None]
