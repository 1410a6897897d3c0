"""Graph error classification against the reference's real bodies and malformed ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from permatoken.meta import ErrorKind, TokenDeath, classify_graph_error

K = ErrorKind
D = TokenDeath


def env(code: Any = None, message: str = "", **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", **extra}
    if code is not None:
        error["code"] = code
    return {"error": error}


# (id, status, headers, body, kind, code, subcode, death, retry_after)
# fmt: off
Case = tuple[
    str, int, dict[str, str] | None, Any, ErrorKind, int | None, int | None, TokenDeath | None, Any
]
CASES: list[Case] = [
    # §3.4 code exchange errors
    ("code-reused", 400, {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_code" "x"'},
     env(100, "This authorization code has been used.", error_subcode=36009),
     K.BAD_REQUEST, 100, 36009, None, None),
    ("code-expired", 400, None,
     env(100, "This authorization code has expired.", error_subcode=36007),
     K.BAD_REQUEST, 100, 36007, None, None),
    ("redirect-mismatch", 400, None,
     env(100, "Error validating verification code. Please make sure your redirect_uri is identical",
         error_subcode=36008),
     K.BAD_REQUEST, 100, 36008, None, None),
    ("garbage-code", 400, None, env(100, "Invalid verification code format."),
     K.BAD_REQUEST, 100, None, None, None),
    ("bad-secret", 400, None, env(1, "Error validating client secret."),
     K.BAD_REQUEST, 1, None, None, None),
    ("bad-app-id", 400, None, env(101, "Error validating application. Invalid application ID."),
     K.BAD_REQUEST, 101, None, None, None),
    # §3.6 debug_token
    ("foreign-app", 400, None,
     env(100, "(#100) The App_id in the input_token did not match the Viewing App"),
     K.BAD_REQUEST, 100, None, None, None),
    ("debug-inner-expired", 200, None,
     {"data": {"app_id": "1", "type": "USER", "is_valid": False, "expires_at": 1352419328,
               "error": {"code": 190, "subcode": 463,
                         "message": "Error validating access token: Session has expired on "
                                    "Thursday, 08-Nov-12 16:02:08 PST."}}},
     K.TOKEN_DEAD, 190, 463, D.EXPIRED, None),
    ("debug-inner-object-alone", 200, None,
     {"code": 190, "subcode": 460, "message": "Error validating access token: changed password"},
     K.TOKEN_DEAD, 190, 460, D.PASSWORD_CHANGED, None),
    ("unparseable-input", 400, None,
     env(190, "Invalid OAuth access token - Cannot parse access token"),
     K.TOKEN_DEAD, 190, None, D.UNPARSEABLE, None),
    # §5.1 envelope
    ("envelope-130429", 400, None,
     {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                "error_data": {"messaging_product": "whatsapp",
                               "details": "Cloud API message throughput has been reached."},
                "error_subcode": 2494055, "is_transient": False, "error_user_title": "…",
                "error_user_msg": "…", "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}},
     K.THROTTLED, 130429, 2494055, None, 5.0),
    # §5.3 token family
    ("190-invalid", 400, None, env(190, "Invalid OAuth access token."),
     K.TOKEN_DEAD, 190, None, D.INVALIDATED, None),
    ("458", 400, None,
     env(190, "Error validating access token: The user has not authorized application 123.",
         error_subcode=458),
     K.TOKEN_DEAD, 190, 458, D.APP_NOT_INSTALLED, None),
    ("459", 400, None,
     env(190, "You cannot access the app till you log in to www.facebook.com and follow the "
              "instructions given.", error_subcode=459),
     K.TOKEN_DEAD, 190, 459, D.CHECKPOINTED, None),
    ("460", 400, None,
     env(190, "Error validating access token: The session has been invalidated because the user "
              "changed their password or Facebook has changed the session for security reasons.",
         error_subcode=460),
     K.TOKEN_DEAD, 190, 460, D.PASSWORD_CHANGED, None),
    ("463", 400, None,
     env(190, "Error validating access token: Session has expired on Thursday, 29-Jul-21 "
              "10:00:00 PDT. The current time is Friday, 30-Jul-21 06:41:07 PDT.",
         error_subcode=463),
     K.TOKEN_DEAD, 190, 463, D.EXPIRED, None),
    ("463-whatsapp-401", 401, None,
     env(190, "Error validating access token: Session has expired on Tuesday, 19-Aug-25 "
              "16:00:00 PDT.", error_subcode=463),
     K.TOKEN_DEAD, 190, 463, D.EXPIRED, None),
    ("464", 400, None, env(190, "Unconfirmed user", error_subcode=464),
     K.TOKEN_DEAD, 190, 464, D.UNCONFIRMED, None),
    ("466", 400, None, env(190, "Invalid OAuth access token.", error_subcode=466),
     K.TOKEN_DEAD, 190, 466, D.REVOKED, None),
    ("467", 400, None,
     env(190, "Error validating access token: The session is invalid because the user logged "
              "out.", error_subcode=467),
     K.TOKEN_DEAD, 190, 467, D.LOGGED_OUT, None),
    ("492", 400, None, env(190, "Invalid session", error_subcode=492),
     K.TOKEN_DEAD, 190, 492, D.INVALIDATED, None),
    ("0-auth", 400, None, env(0, "We were unable to authenticate the app user."),
     K.TOKEN_DEAD, 0, None, D.UNKNOWN, None),
    ("102", 400, None, env(102, "API Session"), K.TOKEN_DEAD, 102, None, D.UNKNOWN, None),
    ("2500", 400, None,
     env(2500, "An active access token must be used to query information about the current user."),
     K.TOKEN_DEAD, 2500, None, D.UNKNOWN, None),
    # A wrong URL is a programming error: it must never count as a dead token (no renewal).
    ("2500-unknown-path", 400, None,
     env(2500, "Unknown path components: /v25.0/123/mesages"),
     K.BAD_REQUEST, 2500, None, None, None),
    ("2500-no-message", 400, None, env(2500, ""), K.BAD_REQUEST, 2500, None, None, None),
    ("104", 400, None, env(104, "A user access token is required"),
     K.TOKEN_DEAD, 104, None, D.UNKNOWN, None),
    ("200-no-token", 400, None, env(200, "Provide valid app ID"),
     K.PERMISSION, 200, None, None, None),
    # §5.4 permission / throttling / transient
    ("3", 400, None, env(3, "(#3) Capability or permissions issue."),
     K.PERMISSION, 3, None, None, None),
    ("10", 400, None, env(10, "Permission not granted"), K.PERMISSION, 10, None, None, None),
    ("230-as-403", 403, None, env(230, "Permissions error"), K.PERMISSION, 230, None, None, None),
    ("368", 400, None, env(368, "(#368) Temporarily blocked for policies violations"),
     K.PERMISSION, 368, None, None, None),
    ("131031", 400, None, env(131031, "(#131031) Account has been locked"),
     K.PERMISSION, 131031, None, None, None),
    ("4-real", 400, None,
     {"error": {"message": "(#4) Application request limit reached", "type": "OAuthException",
                "is_transient": True, "code": 4}},
     K.THROTTLED, 4, None, None, 60.0),
    ("17", 400, None, env(17, "(#17) User request limit reached"),
     K.THROTTLED, 17, None, None, 60.0),
    ("32-as-400", 400, None, env(32, "(#32) Page request limit reached"),
     K.THROTTLED, 32, None, None, 60.0),
    ("613", 400, None, env(613, "(#613) Calls to this api have exceeded the rate limit."),
     K.THROTTLED, 613, None, None, 60.0),
    ("80007-429", 429, None,
     env(80007, "(#80007) The WhatsApp Business Account has reached its rate limit."),
     K.THROTTLED, 80007, None, None, 60.0),
    ("80008", 400, None,
     env(80008, "There have been too many calls to this WhatsApp Business account. Wait a bit and "
                "try again."),
     K.THROTTLED, 80008, None, None, 60.0),
    ("131048-spam", 400, None, env(131048, "(#131048) Spam rate limit hit"),
     K.THROTTLED, 131048, None, None, 60.0),
    ("133016", 400, None, env(133016, "(#133016) Account register deregister rate limit exceeded"),
     K.THROTTLED, 133016, None, None, 300.0),
    ("131056-pair", 400, None,
     env(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
     K.PAIR_RATE_LIMITED, 131056, None, None, 6.0),
    ("131057-maintenance", 400, None, env(131057, "(#131057) Account in maintenance mode"),
     K.TRANSIENT, 131057, None, None, 60.0),
    ("1-500", 500, None, env(1, "An unknown error has occurred."), K.TRANSIENT, 1, None, None, 2.0),
    ("2-500", 500, None,
     env(2, "An unexpected error has occurred. Please retry your request later.",
         is_transient=True),
     K.TRANSIENT, 2, None, None, 2.0),
    ("131000", 500, None, env(131000, "(#131000) Something went wrong"),
     K.TRANSIENT, 131000, None, None, 2.0),
    ("131016", 503, None, env(131016, "(#131016) Service unavailable"),
     K.TRANSIENT, 131016, None, None, 5.0),
    # §4 appsecret_proof
    ("proof-missing", 400, None,
     {"error": {"message": "API calls from the server require an appsecret_proof argument",
                "type": "GraphMethodException", "code": 100}},
     K.BAD_REQUEST, 100, None, None, None),
    ("proof-wrong", 400, None, env(100, "Invalid appsecret_proof provided in the API argument"),
     K.BAD_REQUEST, 100, None, None, None),
    # §10 quirks
    ("wrong-kind-client", 400, None,
     env(190, "(#190) This method must be called with a client access token"),
     K.WRONG_TOKEN_KIND, 190, None, None, None),
    ("wrong-kind-debug-only", 400, None, env(190, "Debug only access token"),
     K.WRONG_TOKEN_KIND, 190, None, None, None),
    ("minus-1", 500, None, env(-1, "Send API unexpected internal error", is_transient=True),
     K.UNKNOWN, -1, None, None, None),
    ("minus-1-portuguese-no-code", 500, None,
     {"error": {"message": "(#-1) Erro interno inesperado"}},
     K.UNKNOWN, -1, None, None, None),
    ("1150", 400, None, env(1150, "An unknown error occurred."), K.UNKNOWN, 1150, None, None, None),
    ("613-space", 400, None, {"error": {"message": "(# 613) Calls to this api have exceeded"}},
     K.THROTTLED, 613, None, None, 60.0),
    ("code-only-in-message", 500, None,
     {"error": {"message": "(#1) An unknown error occurred", "type": "Exception"}},
     K.TRANSIENT, 1, None, None, 2.0),
    ("10-without-prefix", 400, None,
     env(10, "Application does not have permission for this action"),
     K.PERMISSION, 10, None, None, None),
    ("ig-type", 400, None,
     {"error": {"message": "Invalid OAuth access token.", "type": "IGApiException", "code": 190}},
     K.TOKEN_DEAD, 190, None, D.INVALIDATED, None),
    ("463-no-subcode", 400, None,
     env(190, "Error validating access token: Session has expired on Friday, 30-Jul-21"),
     K.TOKEN_DEAD, 190, None, D.EXPIRED, None),
    ("460-no-subcode", 400, None,
     env(190, "Error validating access token: The session has been invalidated because the user "
              "changed their password."),
     K.TOKEN_DEAD, 190, None, D.PASSWORD_CHANGED, None),
    ("190-no-subcode-japanese-date", 400, None,
     env(190, "Error validating access token: Session has expired on 2021年7月29日 10:00"),
     K.TOKEN_DEAD, 190, None, D.EXPIRED, None),
    ("string-codes-reseller", 400, None,
     {"error": {"message": "pair rate limit hit", "code": "131056", "error_subcode": "2494100"}},
     K.PAIR_RATE_LIMITED, 131056, 2494100, None, 6.0),
    ("131009-no-recipient", 400, None, env(131009, "(#131009) Parameter value is not valid"),
     K.BAD_REQUEST, 131009, None, None, None),
    ("131030-old-subcode", 400, None,
     env(131030, "(#131030) Recipient phone number not in allowed list", error_subcode=2655007),
     K.BAD_REQUEST, 131030, 2655007, None, None),
    ("unknown-code-is-transient", 400, None, env(99999, "Something", is_transient=True),
     K.TRANSIENT, 99999, None, None, 2.0),
    ("unknown-code-is-transient-string", 400, None, env(99999, "Something", is_transient="true"),
     K.TRANSIENT, 99999, None, None, 2.0),
    # malformed bodies: the HTTP status is the only signal
    ("html-502", 502, {"Content-Type": "text/html"},
     b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>x</body></html>",
     K.TRANSIENT, None, None, None, 2.0),
    ("empty-500", 500, None, b"", K.TRANSIENT, None, None, None, 2.0),
    ("none-503", 503, None, None, K.TRANSIENT, None, None, None, 2.0),
    ("empty-429", 429, None, b"", K.THROTTLED, None, None, None, 60.0),
    ("empty-429-retry-after", 429, {"Retry-After": "17"}, b"", K.THROTTLED, None, None, None, 17.0),
    ("empty-401", 401, None, b"", K.TOKEN_DEAD, None, None, D.UNKNOWN, None),
    ("empty-400-invalid-token-header", 400,
     {"www-authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth token."'},
     b"", K.TOKEN_DEAD, None, None, D.UNKNOWN, None),
    ("empty-403", 403, None, "", K.PERMISSION, None, None, None, None),
    ("empty-404", 404, None, "", K.BAD_REQUEST, None, None, None, None),
    ("text-400", 400, None, "Bad request, sorry", K.BAD_REQUEST, None, None, None, None),
    ("json-array", 500, None, "[1, 2]", K.TRANSIENT, None, None, None, 2.0),
    ("jsonp-code-4", 400, None,
     '/**/ cb({"error":{"message":"(#4) Application request limit reached","type":"OAuthException",'
     '"is_transient":true,"code":4}});',
     K.THROTTLED, 4, None, None, 60.0),
    ("jsonp-no-comment", 400, None,
     'callback({"error":{"message":"Invalid OAuth access token.","code":190}})',
     K.TOKEN_DEAD, 190, None, D.INVALIDATED, None),
    ("bytes-json", 400, None, json.dumps(env(10, "(#10) nope")).encode(),
     K.PERMISSION, 10, None, None, None),
    ("oauth2-style", 400, None, {"error": "invalid_grant", "error_description": "Bad token"},
     K.BAD_REQUEST, None, None, None, None),
    ("old-rest-api", 500, None, {"error_code": 2, "error_msg": "Service temporarily unavailable"},
     K.TRANSIENT, 2, None, None, 2.0),
]
# fmt: on


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "code", "subcode", "death", "retry_after"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_classification_table(
    status: int,
    headers: Any,
    body: Any,
    kind: ErrorKind,
    code: Any,
    subcode: Any,
    death: Any,
    retry_after: Any,
) -> None:
    """Each reference body (and each malformed one) gets the right kind, code and wait."""
    info = classify_graph_error(status, headers, body)
    assert (info.kind, info.code, info.subcode, info.death, info.retry_after) == (
        kind,
        code,
        subcode,
        death,
        retry_after,
    )
    assert info.http_status == status
    assert info.renewable is (kind is not K.TOKEN_DEAD)
    assert info.advice
    assert info.message
    assert info.retryable is (kind in {K.THROTTLED, K.PAIR_RATE_LIMITED, K.TRANSIENT})


def test_throttle_wait_comes_from_business_usage_minutes() -> None:
    """estimated_time_to_regain_access is minutes; the wait is in seconds."""
    buc = {
        "102289599326934": [
            {
                "type": "whatsapp",
                "call_count": 107,
                "total_cputime": 1,
                "total_time": 125,
                "estimated_time_to_regain_access": 5,
            }
        ]
    }
    headers = {"X-Business-Use-Case-Usage": json.dumps(buc), "Retry-After": "9"}
    info = classify_graph_error(400, headers, env(80008, "too many calls"))
    assert info.kind is K.THROTTLED
    assert info.retry_after == 300.0


def test_zero_regain_estimate_falls_back_to_retry_after() -> None:
    buc = {"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 0}]}
    headers = {"x-business-use-case-usage": json.dumps(buc), "retry-after": "12"}
    assert classify_graph_error(400, headers, env(613, "(#613) x")).retry_after == 12.0


def test_dead_token_gets_no_retry_even_with_usage_estimate() -> None:
    buc = {"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 3}]}
    info = classify_graph_error(
        400, {"X-Business-Use-Case-Usage": json.dumps(buc)}, env(190, "Invalid OAuth access token.")
    )
    assert info.retry_after is None
    assert info.renewable is False


def test_error_data_as_json_string_is_decoded() -> None:
    """The FB SDK tolerates error_data as a JSON string; so must we."""
    body = env(
        131026,
        "(#131026) Message undeliverable",
        error_data=json.dumps(
            {"messaging_product": "whatsapp", "details": "Nachricht konnte nicht zugestellt werden"}
        ),
    )
    info = classify_graph_error(400, None, body)
    assert info.kind is K.BAD_REQUEST
    assert info.details == "Nachricht konnte nicht zugestellt werden"


def test_error_data_plain_string_becomes_details() -> None:
    info = classify_graph_error(400, None, env(100, "(#100) x", error_data="not json at all"))
    assert info.details == "not json at all"


def test_trace_id_from_body_then_header() -> None:
    body = env(4, "(#4) limit", fbtrace_id="AbCdEf")
    assert classify_graph_error(400, {"X-FB-Trace-ID": "hdr"}, body).fbtrace_id == "AbCdEf"
    assert classify_graph_error(400, {"X-FB-Trace-ID": "hdr"}, env(4, "x")).fbtrace_id == "hdr"


def test_is_transient_flag_is_reported_as_sent() -> None:
    assert classify_graph_error(400, None, env(4, "x", is_transient=True)).is_transient is True
    assert classify_graph_error(400, None, env(4, "x", is_transient="false")).is_transient is False
    assert classify_graph_error(400, None, env(4, "x")).is_transient is None


def test_message_never_echoes_a_token() -> None:
    """'Malformed access token <tok>' must not carry the token into logs."""
    token = "EAAJB" + "x1Y2z3" * 10
    info = classify_graph_error(400, None, env(190, f"Malformed access token {token}"))
    assert info.death is D.UNPARSEABLE
    assert token not in info.message
    assert token not in repr(info)


def test_html_page_message_names_the_page() -> None:
    info = classify_graph_error(502, None, "<html><title>502 Bad Gateway</title></html>")
    assert info.message == "non-JSON error page: 502 Bad Gateway"


def test_empty_body_message_names_the_status() -> None:
    assert classify_graph_error(500, None, b"").message == "HTTP 500 without an error message"


def test_expired_advice_says_it_cannot_be_renewed() -> None:
    info = classify_graph_error(400, None, env(190, "expired", error_subcode=463))
    assert "can never be renewed" in info.advice
    assert "meta-system-mint" in info.advice


def test_client_secret_advice_is_specific() -> None:
    info = classify_graph_error(400, None, env(1, "Error validating client secret."))
    assert info.advice == "Check the app secret stored for this app"


def test_describe_includes_code_and_status() -> None:
    info = classify_graph_error(
        400, None, env(190, "Invalid OAuth access token.", error_subcode=463)
    )
    assert info.describe() == "token_dead: Invalid OAuth access token. (code 190/463, HTTP 400)"


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00garbage",
        "{",
        "null",
        "true",
        '{"error": 5}',
        '{"error": {"code": {"nested": 1}}}',
        "x" * 10000,
    ],
)
def test_garbage_never_raises(body: Any) -> None:
    info = classify_graph_error(500, None, body)
    assert info.kind is K.TRANSIENT
    assert len(info.message) <= 500
