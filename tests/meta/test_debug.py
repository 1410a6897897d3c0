"""debug_token parsing and the plain-words verdict."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from permatoken._exceptions import GraphError
from permatoken.meta import (
    ErrorKind,
    GranularScope,
    TokenDeath,
    TokenKind,
    parse_debug_token,
    verdict,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# Reference §3.6, Meta WhatsApp "Permissions" doc.
SYSTEM_USER_NEVER = {
    "data": {
        "app_id": "634974688087057",
        "type": "SYSTEM_USER",
        "application": "Lucky Shrub",
        "data_access_expires_at": 0,
        "expires_at": 0,
        "is_valid": True,
        "issued_at": 1712099387,
        "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
        "granular_scopes": [
            {"scope": "whatsapp_business_management"},
            {"scope": "whatsapp_business_messaging"},
        ],
        "user_id": "104169029247128",
    }
}
# Reference §3.6, "Manage WhatsApp Business accounts" (Embedded Signup, with target_ids).
EMBEDDED_SIGNUP = {
    "data": {
        "app_id": "670843887433847",
        "application": "JaspersMarket",
        "data_access_expires_at": 1672092840,
        "expires_at": 1665090000,
        "granular_scopes": [
            {
                "scope": "whatsapp_business_management",
                "target_ids": ["102289599326934", "101569239400667"],
            },
            {
                "scope": "whatsapp_business_messaging",
                "target_ids": ["102289599326934", "101569239400667"],
            },
        ],
        "is_valid": True,
        "scopes": ["whatsapp_business_management", "whatsapp_business_messaging", "public_profile"],
        "type": "USER",
        "user_id": "10222270944537964",
    }
}
# Reference §3.6, invalid / expired token.
INVALID_EXPIRED = {
    "data": {
        "app_id": "1",
        "type": "USER",
        "application": "A",
        "expires_at": 1352419328,
        "is_valid": False,
        "issued_at": 1347235328,
        "scopes": [],
        "user_id": "2",
        "error": {
            "code": 190,
            "subcode": 463,
            "message": "Error validating access token: Session has expired on "
            "Thursday, 08-Nov-12 16:02:08 PST.",
        },
    }
}


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def data(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "app_id": "1",
        "application": "A",
        "is_valid": True,
        "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
    }
    return {"data": {**base, **fields}}


def test_parse_never_expiring_system_user_example() -> None:
    result = parse_debug_token(SYSTEM_USER_NEVER)
    assert result.type == "SYSTEM_USER"
    assert result.app_id == "634974688087057"
    assert result.application == "Lucky Shrub"
    assert result.expires_at is None and result.never_expires is True
    assert result.data_access_expires_at is None
    assert result.issued_at == datetime.fromtimestamp(1712099387, UTC)
    assert result.is_valid is True
    assert result.granular_scopes == (
        GranularScope("whatsapp_business_management", ()),
        GranularScope("whatsapp_business_messaging", ()),
    )
    assert result.waba_ids == ()
    assert result.user_id == "104169029247128"
    assert result.error is None


def test_parse_embedded_signup_example_collects_waba_ids_in_order() -> None:
    result = parse_debug_token(json.dumps(EMBEDDED_SIGNUP).encode())
    assert result.waba_ids == ("102289599326934", "101569239400667")
    assert result.expires_at == datetime.fromtimestamp(1665090000, UTC)
    assert result.never_expires is False
    assert result.data_access_expires_at == datetime.fromtimestamp(1672092840, UTC)
    assert "public_profile" in result.scopes


def test_waba_ids_accept_ints_and_ignore_other_scopes() -> None:
    result = parse_debug_token(
        data(
            type="SYSTEM_USER",
            expires_at=0,
            granular_scopes=[
                {
                    "scope": "whatsapp_business_messaging",
                    "target_ids": [102938475610293, "101512345678901"],
                },
                {"scope": "business_management", "target_ids": ["999"]},
                {"scope": "whatsapp_business_management", "target_ids": ["101512345678901"]},
            ],
        )
    )
    assert result.waba_ids == ("102938475610293", "101512345678901")


def test_parse_invalid_token_classifies_inner_error() -> None:
    result = parse_debug_token(INVALID_EXPIRED)
    assert result.is_valid is False
    assert result.error is not None
    assert result.error.kind is ErrorKind.TOKEN_DEAD
    assert result.error.death is TokenDeath.EXPIRED
    assert result.error.subcode == 463


def test_parse_invalid_without_error_object_still_has_an_error() -> None:
    result = parse_debug_token(data(type="USER", is_valid=False))
    assert result.error is not None and result.error.kind is ErrorKind.TOKEN_DEAD


def test_error_envelope_raises_graph_error() -> None:
    body = {
        "error": {
            "message": "(#100) The App_id in the input_token did not match the Viewing App",
            "type": "OAuthException",
            "code": 100,
        }
    }
    with pytest.raises(GraphError) as caught:
        parse_debug_token(body, status=400)
    assert caught.value.error.code == 100
    assert caught.value.code == "graph_error"


@pytest.mark.parametrize("body", [b"<html>oops</html>", "[]", {"data": "x"}])
def test_not_a_debug_answer_raises(body: Any) -> None:
    with pytest.raises(GraphError) as caught:
        parse_debug_token(body)
    assert caught.value.error.kind is ErrorKind.UNKNOWN


def test_garbage_fields_are_tolerated() -> None:
    result = parse_debug_token(
        {
            "data": {
                "is_valid": True,
                "scopes": "x",
                "granular_scopes": [1, {"scope": 2}],
                "app_id": True,
            }
        }
    )
    assert result.expires_at is None and result.never_expires is False
    assert result.scopes == () and result.granular_scopes == () and result.app_id is None


@pytest.mark.parametrize("field", ["expires_at", "data_access_expires_at", "issued_at"])
@pytest.mark.parametrize(
    "value",
    [
        1e30,
        10**30,
        -1,
        -62135596800,
        float("nan"),
        float("inf"),
        "soon",
        True,
        False,
        [1],
        {},
        253402300800,
        32503680000,
        100,
    ],
    ids=lambda v: repr(v)[:20],
)
def test_an_impossible_instant_refuses_the_whole_answer(field: str, value: object) -> None:
    """1e30, year 1, year 9999+, negative, NaN, words, booleans: never guessed as "never"."""
    body = {"data": {"is_valid": True, "type": "SYSTEM_USER", "expires_at": 0, field: value}}
    with pytest.raises(GraphError, match=f"impossible {field}") as caught:
        parse_debug_token(body)
    assert caught.value.error.kind is ErrorKind.UNKNOWN


def test_zero_and_digit_strings_are_instants() -> None:
    result = parse_debug_token(
        {"data": {"is_valid": True, "expires_at": "0", "issued_at": "1712099387"}}
    )
    assert result.never_expires and result.issued_at == datetime(2024, 4, 2, 23, 9, 47, tzinfo=UTC)


# --- verdicts -------------------------------------------------------------------------------


def test_verdict_never_expiring_system_user_exact_text() -> None:
    result = parse_debug_token(
        data(
            type="SYSTEM_USER",
            expires_at=0,
            data_access_expires_at=0,
            granular_scopes=[
                {
                    "scope": "whatsapp_business_management",
                    "target_ids": ["102938475610293", "101512345678901"],
                },
                {
                    "scope": "whatsapp_business_messaging",
                    "target_ids": ["102938475610293", "101512345678901"],
                },
            ],
        )
    )
    v = verdict(result, now=NOW)
    assert v.summary == "System-user token, never expires, valid, can message WABAs 1029…, 1015…"
    assert v.token_kind is TokenKind.SYSTEM_USER_NEVER
    assert v.health_hint == "ok"
    assert v.advice is None
    assert any("BISU" in note for note in v.notes)


def test_verdict_dashboard_token_exact_text() -> None:
    issued = NOW - timedelta(hours=3)
    result = parse_debug_token(
        data(type="USER", issued_at=ts(issued), expires_at=ts(NOW + timedelta(hours=21)))
    )
    v = verdict(result, now=NOW)
    assert v.summary == (
        "Dashboard/user token: expires in 21 h. It cannot be renewed forever. For a permanent "
        "setup create a system user (Business Settings → System users), assign the app and the "
        "WABA, and generate a token; `permatoken add … --issuer meta-system-refresh` (60-day) or "
        "`--issuer meta-system-mint` then keeps it alive"
    )
    assert v.token_kind is TokenKind.DASHBOARD_OR_USER_SHORT
    assert v.health_hint == "needs_human"


def test_verdict_sixty_day_system_user_exact_text() -> None:
    """Day 40 is two thirds of 60 days, counted from issued_at."""
    issued = NOW - timedelta(days=19)
    result = parse_debug_token(
        data(type="SYSTEM_USER", issued_at=ts(issued), expires_at=ts(issued + timedelta(days=60)))
    )
    v = verdict(result, now=NOW)
    assert v.summary == (
        "60-day system-user token, expires in 41 days; "
        "permatoken will renew it from day 40 (policy)"
    )
    assert v.token_kind is TokenKind.SYSTEM_USER_60D
    assert v.health_hint == "ok"
    assert v.renew_from == issued + timedelta(days=40)


def test_verdict_sixty_day_uses_the_given_policy_date() -> None:
    issued = NOW - timedelta(days=19)
    result = parse_debug_token(
        data(type="SYSTEM_USER", issued_at=ts(issued), expires_at=ts(issued + timedelta(days=60)))
    )
    v = verdict(result, now=NOW, renew_from=issued + timedelta(days=45))
    assert v.summary.endswith("permatoken will renew it from day 45 (policy)")


def test_verdict_sixty_day_past_renewal_point_is_expiring() -> None:
    issued = NOW - timedelta(days=50)
    result = parse_debug_token(
        data(type="SYSTEM_USER", issued_at=ts(issued), expires_at=ts(issued + timedelta(days=60)))
    )
    v = verdict(result, now=NOW)
    assert v.health_hint == "expiring"
    assert v.summary == "60-day system-user token, expires in 10 days; renewal is due since day 40"


def test_verdict_invalid_expired_token() -> None:
    v = verdict(parse_debug_token(INVALID_EXPIRED), now=NOW)
    assert v.summary == (
        "Token is invalid: it expired on 2012-11-09 00:02 UTC. An expired token can never be "
        "renewed: mint a new one with another valid admin or system-user token (`--issuer "
        "meta-system-mint`), or generate a new one in Business Settings → System users."
    )
    assert v.health_hint == "expired"


def test_verdict_invalid_revoked_token() -> None:
    body = data(
        type="SYSTEM_USER",
        expires_at=0,
        is_valid=False,
        error={"code": 190, "subcode": 466, "message": "Invalid OAuth access token."},
    )
    v = verdict(parse_debug_token(body), now=NOW)
    assert v.summary == (
        "Token is invalid: it was revoked. Generate or mint a new token; a revoked token never "
        "works again."
    )
    assert v.health_hint == "invalid"
    assert v.token_kind is TokenKind.SYSTEM_USER_NEVER


def test_verdict_app_removed_token() -> None:
    body = data(
        type="SYSTEM_USER",
        expires_at=0,
        is_valid=False,
        error={"code": 190, "subcode": 458, "message": "not authorized application"},
    )
    v = verdict(parse_debug_token(body), now=NOW)
    assert v.summary.startswith(
        "Token is invalid: the app is no longer installed for its user or business. Re-install"
    )


def test_valid_flag_but_past_expiry_is_expired() -> None:
    result = parse_debug_token(
        data(
            type="SYSTEM_USER",
            issued_at=ts(NOW - timedelta(days=61)),
            expires_at=ts(NOW - timedelta(days=1)),
        )
    )
    v = verdict(result, now=NOW)
    assert v.health_hint == "expired"
    assert v.summary.startswith("Token is invalid: it expired on 2026-11-19 12:00 UTC.")


def test_verdict_long_lived_user_token() -> None:
    result = parse_debug_token(
        {
            "data": {
                **EMBEDDED_SIGNUP["data"],
                "issued_at": ts(NOW - timedelta(days=8)),
                "expires_at": ts(NOW + timedelta(days=52)),
            }
        }
    )
    v = verdict(result, now=NOW)
    assert v.token_kind is TokenKind.USER_LONG
    assert v.summary.startswith(
        "Long-lived user token, expires in 52 days, valid, can message WABAs 1022…, 1015…."
    )
    assert "meta-system-refresh" in v.summary


def test_user_token_kind_without_issued_at_uses_remaining_time() -> None:
    short = parse_debug_token(data(type="USER", expires_at=ts(NOW + timedelta(minutes=30))))
    long = parse_debug_token(data(type="USER", expires_at=ts(NOW + timedelta(days=30))))
    assert verdict(short, now=NOW).token_kind is TokenKind.DASHBOARD_OR_USER_SHORT
    assert verdict(short, now=NOW).summary.startswith("Dashboard/user token: expires in 30 min.")
    assert verdict(long, now=NOW).token_kind is TokenKind.USER_LONG


def test_bisu_only_when_the_caller_knows() -> None:
    result = parse_debug_token(data(type="SYSTEM_USER", expires_at=0))
    assert verdict(result, now=NOW).token_kind is TokenKind.SYSTEM_USER_NEVER
    v = verdict(result, now=NOW, kind_hint=TokenKind.BISU)
    assert v.token_kind is TokenKind.BISU
    assert v.summary == (
        "Business-integration (Embedded Signup) token, never expires, valid, "
        "can message all WABAs assigned to it"
    )


def test_app_and_page_tokens() -> None:
    app = verdict(parse_debug_token(data(type="APP", scopes=[])), now=NOW)
    page = verdict(parse_debug_token(data(type="PAGE", expires_at=0)), now=NOW)
    assert app.token_kind is TokenKind.APP and app.health_hint == "ok"
    assert page.token_kind is TokenKind.PAGE and page.health_hint == "needs_human"


def test_missing_messaging_scope_is_said() -> None:
    result = parse_debug_token(
        data(type="SYSTEM_USER", expires_at=0, scopes=["whatsapp_business_management"])
    )
    assert verdict(result, now=NOW).summary == (
        "System-user token, never expires, valid, "
        "cannot send WhatsApp messages (whatsapp_business_messaging missing)"
    )


def test_many_wabas_are_abbreviated() -> None:
    ids = [f"{i}00000000000{i}" for i in range(1, 8)]
    result = parse_debug_token(
        data(
            type="SYSTEM_USER",
            expires_at=0,
            granular_scopes=[{"scope": "whatsapp_business_messaging", "target_ids": ids}],
        )
    )
    assert verdict(result, now=NOW).summary.endswith(
        "can message WABAs 1000…, 2000…, 3000…, 4000…, 5000… and 2 more"
    )
