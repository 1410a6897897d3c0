"""Auth fields in multipart bodies: stripped from a buffer, caught in a stream (pure)."""

from __future__ import annotations

import pytest

from permatoken.proxy import keys
from permatoken.proxy.multipart import Watcher, boundary_of, strip_fields

B = b"xYzBoundary42"
KEY = "pt_" + "k" * 43


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return b"--" + B + b"\r\nContent-Disposition: " + disp.encode() + b"\r\n\r\n" + value + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + B + b"--\r\n"


def test_boundary_of_content_types():
    assert boundary_of(f"multipart/form-data; boundary={B.decode()}") == B
    assert boundary_of('multipart/form-data; boundary="a b"; charset=x') == b"a b"
    assert boundary_of("application/json") is None
    assert boundary_of("multipart/form-data") is None


@pytest.mark.parametrize("where", [0, 1, 2])
def test_the_key_part_is_removed_wherever_it_is(where: int):
    others = [part("messaging_product", b"whatsapp"), part("file", b"\x00" * 100, "a.bin")]
    with_key = list(others)
    with_key.insert(where, part("access_token", KEY.encode()))
    body, found = strip_fields(form(*with_key), B, keys.AUTH_PARAMS)
    assert body == form(*others)
    assert found == {"access_token": [KEY]}


def test_a_prefix_keeps_its_unfinished_last_part():
    full = form(part("access_token", KEY.encode()), part("file", b"x" * 5000, "a.bin"))
    prefix = full[:300]
    body, found = strip_fields(prefix, B, keys.AUTH_PARAMS)
    assert found == {"access_token": [KEY]}
    assert body == full[len(part("access_token", KEY.encode())) : 300]


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_the_watcher_sees_a_late_key_header_before_its_value(chunk: int):
    """Fed in chunks of any size, it reports the field once its header is complete."""
    body = form(part("file", b"y" * 3000, "a.bin"), part("access_token", KEY.encode()))
    w = Watcher(B, keys.AUTH_PARAMS)
    sent = b""
    for i in range(0, len(body), chunk):
        piece = body[i : i + chunk]
        if w.feed(piece):
            break
        sent += piece
    else:
        pytest.fail("the watcher never saw the access_token part")
    assert KEY.encode()[:4] not in sent  # not one byte of the value went out


def test_the_watcher_ignores_other_fields():
    w = Watcher(B, keys.AUTH_PARAMS)
    body = form(part("file", b"access_token" * 100, "access_token.txt"), part("type", b"x"))
    assert all(w.feed(body[i : i + 33]) is None for i in range(0, len(body), 33))
