"""The target of a proxied request: the name and Graph path as written, or a refusal (pure)."""

from __future__ import annotations

import pytest

from permatoken.proxy.errors import ProxyRefusal, Refusal
from permatoken.proxy.target import message_sender, parse_target


@pytest.mark.parametrize(
    ("raw", "name", "path"),
    [
        (b"/graph/acme/messaging/-/v25.0/123/messages", "acme/messaging", "/v25.0/123/messages"),
        (b"/graph/acme/-/me", "acme", "/me"),
        (b"/graph/a/b/c/d/-", "a/b/c/d", "/"),
        (b"/graph/acme/wa.eu_1/-/", "acme/wa.eu_1", "/"),
        (b"/graph/acme/x/-/v25.0/act_1,2/insights", "acme/x", "/v25.0/act_1,2/insights"),
    ],
)
def test_names_of_any_depth_and_graph_paths(raw: bytes, name: str, path: str):
    """/-/ separates a name of any depth from the Graph path; the query is kept raw."""
    t = parse_target(raw, b"fields=id%2Cname&x=1")
    assert (t.name, t.path, t.query) == (name, path, b"fields=id%2Cname&x=1")


@pytest.mark.parametrize(
    "raw",
    [
        b"/graph/acme%2Fmessaging/-/me",  # an encoded slash in the name
        b"/graph/acme/%6Dessaging/-/me",  # any percent-encoding in the name
        b"/graph/ACME/messaging/-/me",  # not the name grammar
        b"/graph/acme/../globex/wa/-/me",  # a dot segment in the name
        b"/graph/../v1/keys/-/me",
        b"/graph//acme/-/me",  # an empty segment
        b"/graph/acme/messaging/v25.0/me",  # no /-
        b"/graph/-/me",  # no name
        b"/graph/acme/messaging/-/../../v1/keys",  # a dot segment in the Graph path
        b"/graph/acme/messaging/-/v25.0/./me",
        b"/graph/acme/messaging/-/...",
        b"/graph/acme/messaging/-/v25.0/%2e%2e/me",  # encoded dots
        b"/graph/acme/messaging/-/v25.0%2Fme",  # an encoded slash in the path
        b"/graph/acme/messaging/-/https://evil.example/x",  # an absolute URL
        b"/graph/acme/messaging/-//evil.example/x",  # a network-path reference
        b"/graph/acme/messaging/-/user@evil.example/x",
        b"/graph/acme/messaging/-/v25.0/me\\..\\x",  # backslashes
        b"/graph/acme/messaging/-me",  # no slash after /-
        b"/graph/acme/messaging/-/" + b"a/" * 2000,  # too long
    ],
)
def test_every_trick_is_refused_before_anything_is_decoded(raw: bytes):
    """Encoded names, dot segments, absolute URLs, hosts and odd characters: 400 bad_path."""
    with pytest.raises(ProxyRefusal) as caught:
        parse_target(raw, b"")
    assert caught.value.reason is Refusal.BAD_PATH and caught.value.status == 400
    assert caught.value.message  # says what to fix


def test_refusals_say_what_to_fix():
    with pytest.raises(ProxyRefusal, match="end the base URL with /-"):
        parse_target(b"/graph/acme/messaging/v25.0/me", b"")
    with pytest.raises(ProxyRefusal, match="does not end with a slash"):
        parse_target(b"/graph/acme/messaging/-//v25.0/me", b"")


@pytest.mark.parametrize(
    ("method", "path", "phone"),
    [
        ("POST", "/v25.0/106540352242922/messages", "106540352242922"),
        ("POST", "/106540352242922/messages", "106540352242922"),
        ("GET", "/v25.0/106540352242922/messages", None),
        ("POST", "/v25.0/106540352242922/media", None),
        ("POST", "/v25.0/me/messages", None),
        ("POST", "/v25.0/1/2/messages", None),
    ],
)
def test_only_cloud_api_sends_are_paced(method: str, path: str, phone: str | None):
    assert message_sender(method, path) == phone
