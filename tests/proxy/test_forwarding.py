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


def test_requests_during_a_report_wait_for_it_instead_of_meeting_the_dead_token(
    proxied: Proxied,
):
    """While the report of a dead version is under way (the mint held 3 s), a new request waits
    for it and goes out with the next version: Meta sees one 190, not one per request."""
    import threading

    from .conftest import MINT, until

    c = proxied.client()
    assert proxied.send(c, "warm").status_code == 200
    proxied.revoke()
    proxied.state.inject_fault(MINT, kind="latency", latency_seconds=3)
    answers: dict[str, int] = {}

    def send(text: str) -> None:
        answers[text] = proxied.send(proxied.client(), text).status_code

    first = threading.Thread(target=send, args=("first",))
    first.start()
    until(lambda: proxied.broker.broker.reports)  # the report of version 1 is under way
    second = threading.Thread(target=send, args=("second",))
    second.start()
    first.join(60)
    second.join(60)
    assert answers == {"first": 200, "second": 200}
    assert proxied.sends() == [None, 190, None, None]
    assert proxied.mints() == 1
