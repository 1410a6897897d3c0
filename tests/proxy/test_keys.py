"""Where the key is, and the request without it (pure)."""

from __future__ import annotations

import json

import pytest

from permatoken.proxy import keys
from permatoken.proxy.errors import ProxyRefusal, Refusal

KEY = "pt_" + "k" * 43


def _found(**kw: object) -> keys.Found:
    return keys.Found(**kw)  # type: ignore[arg-type]


def test_bearer_and_oauth_headers_carry_the_key():
    for header in (f"Bearer {KEY}", f"OAuth {KEY}", f"bearer   {KEY} "):
        found = keys.Found()
        keys.from_headers([header.encode()], found)
        assert found.key() == KEY


def test_a_basic_header_is_a_bad_key_not_a_missing_one():
    found = keys.Found()
    keys.from_headers([b"Basic dXNlcjpwYXNz"], found)
    assert found.key() == "Basic dXNlcjpwYXNz"


def test_query_keeps_other_pairs_byte_for_byte():
    """access_token, appsecret_proof and appsecret_time leave; the rest keeps its encoding."""
    found = keys.Found()
    raw = f"fields=id%2Cname&access_token={KEY}&appsecret_proof=abc&appsecret_time=1&a=%7B%7D".encode()
    assert keys.from_query(raw, found) == b"fields=id%2Cname&a=%7B%7D"
    assert found.key() == KEY and found.timed


def test_urlencoded_form_and_json_fields():
    found = keys.Found()
    body = keys.from_body(
        f"messaging_product=whatsapp&access_token={KEY}&to=1".encode(),
        "application/x-www-form-urlencoded",
        found,
    )
    assert body == b"messaging_product=whatsapp&to=1" and found.key() == KEY
    found = keys.Found()
    raw = json.dumps({"to": "1", "access_token": KEY, "appsecret_proof": "x"}).encode()
    body = keys.from_body(raw, "application/json; charset=utf-8", found)
    assert json.loads(body) == {"to": "1"} and found.key() == KEY


def test_an_escaped_json_field_name_is_found_too():
    found = keys.Found()
    raw = b'{"access\\u005ftoken": "' + KEY.encode() + b'", "to": "1"}'
    assert json.loads(keys.from_body(raw, "application/json", found)) == {"to": "1"}
    assert found.key() == KEY


def test_bodies_without_auth_fields_are_untouched():
    found = keys.Found()
    raw = b'{"to": "1",   "text": {"body": "access"}}'
    assert keys.from_body(raw, "application/json", found) is raw
    assert keys.from_body(b"a=1&b=2", "application/x-www-form-urlencoded", found) == b"a=1&b=2"
    assert keys.from_body(b"\x00binary", "application/octet-stream", found) == b"\x00binary"
    assert found.keys == []


def test_no_key_and_a_key_in_two_places_are_refused():
    with pytest.raises(ProxyRefusal) as caught:
        keys.Found().key()
    assert caught.value.reason is Refusal.MISSING_KEY and caught.value.status == 401
    found = keys.Found()
    keys.from_headers([f"Bearer {KEY}".encode()], found)
    keys.from_query(f"access_token={KEY}".encode(), found)
    with pytest.raises(ProxyRefusal) as caught:
        found.key()
    assert caught.value.reason is Refusal.DUPLICATE_KEY
    assert "Authorization header, access_token query parameter" in caught.value.message
    found = keys.Found()
    keys.from_query(f"access_token={KEY}&access_token={KEY}".encode(), found)
    with pytest.raises(ProxyRefusal, match="sent 2 times"):
        found.key()
