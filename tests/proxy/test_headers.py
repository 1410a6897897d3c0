"""Which headers cross the proxy; the token mask (pure)."""

from __future__ import annotations

import pytest

from permatoken.proxy.errors import TABLE, ProxyRefusal, Refusal
from permatoken.proxy.headers import Mask, request_headers, response_headers

TOKEN = "EAAtoken" + "x" * 40


def test_request_headers_keep_end_to_end_and_drop_the_rest():
    raw = [
        (b"content-type", b"application/json"),
        (b"user-agent", b"pywa/4"),
        (b"authorization", b"Bearer pt_x"),
        (b"cookie", b"a=b"),
        (b"host", b"evil.example"),
        (b"x-forwarded-host", b"evil.example"),
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"forwarded", b"for=1.2.3.4"),
        (b"x-original-url", b"/v1/keys"),
        (b"connection", b"keep-alive, x-secret"),
        (b"x-secret", b"named by Connection"),
        (b"transfer-encoding", b"chunked"),
        (b"content-length", b"10"),
        (b"accept-encoding", b"gzip"),
        (b"proxy-authorization", b"Basic x"),
    ]
    assert request_headers(raw) == [
        (b"content-type", b"application/json"),
        (b"user-agent", b"pywa/4"),
        (b"accept-encoding", b"identity"),
    ]


def test_response_headers_keep_meta_usage_headers_and_mask_the_token():
    raw = [
        (b"x-app-usage", b'{"call_count":1}'),
        (b"x-business-use-case-usage", b"{}"),
        (
            b"www-authenticate",
            b'OAuth "Facebook Platform" "invalid_token" "bad ' + TOKEN.encode() + b'"',
        ),
        (b"transfer-encoding", b"chunked"),
        (b"content-length", b"99"),
        (b"date", b"Mon, 30 Nov 2026 18:41:34 GMT"),  # the proxy's server sets its own
        (b"server", b"uvicorn"),
    ]
    out = dict(response_headers(raw, Mask([TOKEN])))
    assert set(out) == {b"x-app-usage", b"x-business-use-case-usage", b"www-authenticate"}
    assert TOKEN.encode() not in out[b"www-authenticate"]
    assert len(out[b"www-authenticate"]) == len(raw[2][1])


@pytest.mark.parametrize("chunk", [1, 5, 47, 1000])
def test_the_mask_catches_a_token_split_across_chunks(chunk: int):
    body = (b'{"error":{"message":"Malformed access token ' + TOKEN.encode() + b'"}}') * 3
    m = Mask([TOKEN])
    out = b"".join(m.feed(body[i : i + chunk]) for i in range(0, len(body), chunk)) + m.flush()
    assert len(out) == len(body) and TOKEN.encode() not in out
    assert out.count(b"*" * len(TOKEN)) == 3


def test_every_refusal_is_graph_shaped_with_a_permatoken_message():
    import json

    for reason in Refusal:
        r = ProxyRefusal(reason, "what to fix")
        body = json.loads(r.body())
        status, code, kind, _ = TABLE[reason]
        assert r.status == status
        assert body["error"]["code"] == code and body["error"]["type"] == kind
        assert body["error"]["message"] == "permatoken: what to fix"
        assert dict(r.raw_headers(3))[b"x-permatoken-error"] == reason.value.encode()
