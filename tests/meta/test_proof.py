"""appsecret_proof against independently computed vectors."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from permatoken._secret import Secret
from permatoken.meta import appsecret_proof, appsecret_proof_timed

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "EAAJBtestTOKEN1234567890"


def test_classic_proof_matches_hmac_sha256_hex() -> None:
    """PHP: hash_hmac('sha256', $access_token, $app_secret)."""
    expected = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert appsecret_proof(SECRET, TOKEN) == expected
    assert appsecret_proof(Secret(SECRET), Secret(TOKEN)) == expected


def test_known_vector() -> None:
    """A fixed vector, so that swapping key and message would be caught."""
    assert appsecret_proof("key", "The quick brown fox jumps over the lazy dog") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    assert appsecret_proof("key", "message") != appsecret_proof("message", "key")


def test_timed_proof_covers_token_bar_time() -> None:
    expected = hmac.new(SECRET.encode(), f"{TOKEN}|1700000000".encode(), hashlib.sha256).hexdigest()
    assert appsecret_proof_timed(SECRET, TOKEN, 1700000000) == (expected, 1700000000)
    assert appsecret_proof_timed(SECRET, TOKEN, 1700000001)[0] != expected


@pytest.mark.parametrize("bad", [1.5, "1700000000", True])
def test_timed_proof_needs_integer_time(bad: Any) -> None:
    with pytest.raises(TypeError):
        appsecret_proof_timed(SECRET, TOKEN, bad)
