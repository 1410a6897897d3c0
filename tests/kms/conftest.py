"""Fixtures for the KMS tests: a real moto server and a KMS key in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _moto import MotoServer, aws_env, boto, moto_fixture
from sinks.conftest import _watched_values_in_every_phase  # noqa: F401


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    yield from moto_fixture(tmp_path_factory)


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A freshly reset moto, named by the standard AWS environment of this test."""
    from permatoken.kms import forget_readers

    forget_readers()
    yield aws_env(moto_server, monkeypatch)
    forget_readers()


@pytest.fixture
def kms_key(moto: MotoServer) -> str:
    """The ARN of a new symmetric KMS key, also reachable as ``alias/permatoken``."""
    kms = boto("kms")
    arn = str(kms.create_key(Description="permatoken test KEK")["KeyMetadata"]["Arn"])
    kms.create_alias(AliasName="alias/permatoken", TargetKeyId=arn)
    return arn
