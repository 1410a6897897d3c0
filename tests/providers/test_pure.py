"""The pure parts: signatures, envelopes, event meanings (no database, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from permatoken._secret import Secret
from permatoken.client.broker import parse_token
from permatoken.providers.events import (
    Action,
    MalformedDelivery,
    action_for,
    changes_of,
    deauthorize_change,
)
from permatoken.providers.signatures import (
    SignatureRefused,
    app_of_delivery,
    parse_signed_request,
    verify_token_matches,
)

SECRETS = {"111": Secret("first-secret"), "222": Secret("second-secret")}


def sig(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_app_whose_secret_signed_the_body_is_found() -> None:
    body = b'{"entry":[]}'
    assert app_of_delivery(sig("second-secret", body), body, SECRETS) == "222"
    assert (
        app_of_delivery(
            sig("first-secret", body).upper().replace("SHA256=", "sha256="), body, SECRETS
        )
        == "111"
    )


@pytest.mark.parametrize(
    ("header", "missing"),
    [(None, True), ("", True), ("sha256=zz", False), ("sha1=" + "0" * 40, False)],
)
def test_bad_signature_headers_are_refused(header: str | None, missing: bool) -> None:
    with pytest.raises(SignatureRefused) as caught:
        app_of_delivery(header, b"{}", SECRETS)
    assert caught.value.missing is missing


def test_a_signature_over_other_bytes_is_refused() -> None:
    with pytest.raises(SignatureRefused):
        app_of_delivery(sig("first-secret", b"{}"), b"{} ", SECRETS)
    with pytest.raises(SignatureRefused):
        app_of_delivery(sig("first-secret", b"{}"), b"{}", {})


def _signed_request(secret: str, payload: dict[str, object]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    mac = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=") + "." + encoded


def test_signed_request_checks_algorithm_and_signature() -> None:
    good = {"algorithm": "HMAC-SHA256", "issued_at": 1700000000, "user_id": "42"}
    parsed = parse_signed_request(_signed_request("first-secret", good), SECRETS)
    assert parsed.app_id == "111" and parsed.payload["user_id"] == "42"
    for bad in (
        _signed_request("other", good),
        _signed_request("first-secret", good | {"algorithm": "none"}),
        "no-dot",
        "a.b.c",
        "!!.@@",
    ):
        with pytest.raises(SignatureRefused):
            parse_signed_request(bad, SECRETS)
    change = deauthorize_change("111", good)
    assert change.user_id == "42" and change.key == deauthorize_change("111", dict(good)).key
    with pytest.raises(MalformedDelivery):
        deauthorize_change("111", {"algorithm": "HMAC-SHA256", "issued_at": 1})


def test_verify_token_comparison() -> None:
    assert verify_token_matches("abc", Secret("abc"))
    assert not verify_token_matches("abd", Secret("abc"))
    assert not verify_token_matches(None, Secret("abc"))


def _envelope(
    entry_id: str, value: dict[str, object], field: str = "account_update"
) -> dict[str, object]:
    return {
        "entry": [
            {"id": entry_id, "time": 1700000000, "changes": [{"field": field, "value": value}]}
        ]
    }


def test_changes_take_the_waba_from_waba_info_else_the_entry() -> None:
    value = {
        "event": "PARTNER_APP_UNINSTALLED",
        "waba_info": {"waba_id": "555", "owner_business_id": "777"},
    }
    (c,) = changes_of(_envelope("999", value), "111")
    assert (c.waba_id, c.business_id, c.event) == ("555", "777", "PARTNER_APP_UNINSTALLED")
    (d,) = changes_of(_envelope("999", {"event": "ACCOUNT_DELETED"}), "111")
    assert d.waba_id == "999"
    assert changes_of(_envelope("999", {"x": 1}, field="messages"), "111") == []
    # Same change, same key (a replay); another app, another key.
    assert c.key == changes_of(_envelope("999", value), "111")[0].key
    assert c.key != changes_of(_envelope("999", value), "222")[0].key


def test_ids_that_are_not_digits_are_never_used() -> None:
    value = {
        "event": "ACCOUNT_DELETED",
        "waba_info": {"waba_id": '1" OR "1', "owner_business_id": "%"},
    }
    (c,) = changes_of(_envelope("not-digits", value), "111")
    assert c.waba_id is None and c.business_id is None


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        [],
        {"entry": {}},
        {"entry": [1]},
        {"entry": [{"time": "x", "changes": []}]},
        {"entry": [{"time": 1, "changes": [{"field": "account_update", "value": {}}]}]},
    ],
)
def test_malformed_envelopes_are_refused(envelope: object) -> None:
    with pytest.raises(MalformedDelivery):
        changes_of(envelope, "111")


@pytest.mark.parametrize(
    ("event", "payload", "action"),
    [
        ("PARTNER_APP_UNINSTALLED", {}, Action.DEAD),
        ("PARTNER_REMOVED", {}, Action.DEAD),
        ("ACCOUNT_DELETED", {}, Action.DEAD),
        ("DEAUTHORIZED", {}, Action.DEAD),
        ("ACCOUNT_OFFBOARDED", {}, Action.SUSPEND),
        ("DISABLED_UPDATE", {"ban_info": {"waba_ban_state": "DISABLE"}}, Action.SUSPEND),
        ("DISABLED_UPDATE", {"ban_info": {"waba_ban_state": "REINSTATE"}}, Action.REINSPECT),
        ("PARTNER_APP_INSTALLED", {}, Action.REINSPECT),
        ("ACCOUNT_RECONNECTED", {}, Action.REINSPECT),
        ("ACCOUNT_VIOLATION", {}, Action.RECORD),
    ],
)
def test_what_each_event_means(event: str, payload: dict[str, object], action: Action) -> None:
    assert action_for(event, payload) is action


def test_the_sdk_reads_the_health_of_a_token_answer() -> None:
    data = {"name": "acme/a", "version": 3, "token": "EAAhealth" + "h" * 20, "health": "invalid"}
    assert parse_token(data, "acme/a").health == "invalid"
    assert parse_token(data | {"health": 5}, "acme/a").health is None
