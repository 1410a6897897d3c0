"""Sink URLs, deliveries and back-off: pure rules, no I/O."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from permatoken._exceptions import InputError
from permatoken._secret import Secret
from permatoken.sinks import KINDS, Delivery, parse_sink_url
from permatoken.sinks.worker import backoff


@pytest.mark.parametrize(
    ("url", "kind", "target", "fmt", "canonical"),
    [
        ("aws-sm://prod/whatsapp", "aws-sm", "prod/whatsapp", "json", "aws-sm://prod/whatsapp"),
        ("aws-sm://x?format=raw", "aws-sm", "x", "raw", "aws-sm://x?format=raw"),
        (
            "aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:wa-AbCdEf",
            "aws-sm",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:wa-AbCdEf",
            "json",
            "aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:wa-AbCdEf",
        ),
        ("file:///run/secrets/wa", "file", "/run/secrets/wa", "raw", "file:///run/secrets/wa"),
        ("file:///a/b?format=json", "file", "/a/b", "json", "file:///a/b?format=json"),
    ],
)
def test_sink_urls_parse(url: str, kind: str, target: str, fmt: str, canonical: str) -> None:
    """each kind's URL gives its target, its format (default per kind) and one canonical form"""
    spec = parse_sink_url(url)
    assert (spec.kind, spec.target, spec.format, spec.url) == (kind, target, fmt, canonical)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("vault://kv/x", "unknown sink kind 'vault'"),
        ("s3://bucket/x", "unknown sink kind 's3'"),
        ("prod/whatsapp", "is not SCHEME://TARGET"),
        ("file://relative/path", "needs an absolute file path"),
        ("file:///dir/", "needs an absolute file path"),
        ("file:///a/../etc/x", "needs an absolute file path"),
        ("aws-sm://", "needs a secret name or ARN"),
        ("aws-sm://a b", "needs a secret name or ARN"),
        ("aws-sm://x?format=yaml", "format='yaml'"),
        ("aws-sm://x?region=eu-west-1", "unknown sink option 'region'"),
    ],
)
def test_bad_sink_urls_are_refused_with_a_hint(url: str, words: str) -> None:
    """a bad URL names what is wrong and how a good one looks"""
    with pytest.raises(InputError) as info:
        parse_sink_url(url)
    assert words in info.value.message
    assert info.value.hint


def test_every_kind_is_a_module_with_a_class() -> None:
    """the registry names importable classes (one module per kind)"""
    import importlib

    for info in KINDS.values():
        cls = getattr(importlib.import_module(info.module), info.cls)
        assert callable(cls.from_spec) and callable(cls.deliver)
        assert parse_sink_url(info.example.replace("ABS/PATH", "tmp/x")).kind in KINDS


def _delivery(uid: str = "a" * 32, cid: int = 7, version: int = 3) -> Delivery:
    return Delivery(uid, cid, "acme/wa", version, Secret("zqTok"), datetime(2027, 1, 2, tzinfo=UTC))


def test_idempotency_key_is_stable_per_sink_credential_and_version() -> None:
    """the same delivery always has the same key (a UUID AWS accepts); any other differs"""
    key = _delivery().idempotency_key
    assert key == _delivery().idempotency_key
    assert uuid.UUID(key) and 32 <= len(key) <= 64
    others = {
        _delivery(uid="b" * 32).idempotency_key,
        _delivery(cid=8).idempotency_key,
        _delivery(version=4).idempotency_key,
    }
    assert key not in others and len(others) == 3


def test_rendered_values() -> None:
    """JSON has token, version and expiry; raw is the bare token; the repr shows neither"""
    d = _delivery()
    data = json.loads(d.render("json"))
    assert data == {
        "token": "zqTok",
        "version": 3,
        "expires_at": "2027-01-02T00:00:00Z",
        "credential": "acme/wa",
    }
    assert d.render("raw") == "zqTok"
    assert "zqTok" not in repr(d)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """5, 10, 20… seconds, never past the cap, jitter only shortens by up to 20 %"""
    waits = [backoff(n, first=5, cap=60, rand=lambda: 1.0) for n in range(1, 7)]
    assert waits == [5, 10, 20, 40, 60, 60]
    assert backoff(2, first=5, cap=60, rand=lambda: 0.0) == pytest.approx(8.0)
