"""Property-based tests from the served OpenAPI document: no 5xx, no schema violations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import LiveBroker, add_manual

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def store_url(home: Path) -> str:
    """SQLite only here: the fuzzing is about the HTTP layer, the backends are covered elsewhere."""
    return f"sqlite:///{home / 'permatoken.db'}"


@pytest.fixture
def fuzzed(live_broker: LiveBroker, new_token: Any) -> Iterator[tuple[LiveBroker, str]]:
    add_manual(live_broker.store, "acme/wa", new_token())
    yield live_broker, live_broker.key("admin")


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"]
)
def test_api_conforms_to_its_openapi_document(
    fuzzed: tuple[LiveBroker, str], mode: GenerationMode
) -> None:
    """Every operation, valid and invalid input: no 5xx, documented answers, bad input → 4xx."""
    lb, key = fuzzed
    schema = schemathesis.openapi.from_url(lb.url + "/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/v1/stream":
            continue  # an endless response: covered by test_tokens

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            auth = {"Authorization": f"Bearer {key}"}
            if mode is GenerationMode.NEGATIVE and "Authorization" not in (case.headers or {}):
                # The negative case *is* the missing Authorization header: sending ours would turn
                # it back into a valid request (and "accepted invalid data" into a false alarm).
                auth = {}
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
        except Exception as exc:
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
