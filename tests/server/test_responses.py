"""Answers are serialised through the models that feed OpenAPI (server/schemas.py), byte for byte
what the hand-built dictionaries gave before: times in UTC ending in Z, fields in schema order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from permatoken.access import ApiKey, Role
from permatoken.models import App, Event, Health, TokenVersion, VersionMeta, VersionState
from permatoken.rotation import RotationOutcome
from permatoken.server.routes_apps import app_out
from permatoken.server.routes_credentials import outcome_out, version_out
from permatoken.server.routes_history import event_out
from permatoken.server.schemas import HealthOut, KeyOut

NAIVE = datetime(2026, 1, 2, 3, 4, 5, 120000)  # as SQLite may hand it back: UTC without tzinfo
EAST = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))


def _wire(answer: Any) -> str:
    """What starlette's JSONResponse sends for ``answer.model_dump(mode="json")``."""
    return json.dumps(answer.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


def test_a_version_answers_in_schema_order_with_utc_times() -> None:
    """Naive times are UTC and offsets are converted: every time ends in Z."""
    meta = VersionMeta(token_type="SYSTEM_USER", expires_at=None, is_valid=True, verdict="ok")
    v = TokenVersion(1, 3, VersionState.CURRENT, "fp:1", "kek", meta, NAIVE, EAST)
    assert _wire(version_out(v)) == (
        '{"version":3,"state":"current","fingerprint":"fp:1","token_type":"SYSTEM_USER",'
        '"expires_at":null,"is_valid":true,"verdict":"ok",'
        '"created_at":"2026-01-02T03:04:05.120000Z","state_changed_at":"2026-01-02T03:04:05Z"}'
    )


def test_apps_events_and_outcomes_keep_their_wire_form() -> None:
    """Non-ASCII stays as is; a missing health or name is null."""
    app = App("123", "Café", False, "kek1", NAIVE, datetime(2026, 1, 2, tzinfo=UTC))
    assert _wire(app_out(app)) == (
        '{"id":"123","name":"Café","require_app_secret":false,"kek_id":"kek1",'
        '"created_at":"2026-01-02T03:04:05.120000Z","updated_at":"2026-01-02T00:00:00Z"}'
    )
    event = Event(9, None, "rotated", EAST, "scheduler", {"version": 2, "why": ["é"]})
    assert _wire(event_out(event)) == (
        '{"id":9,"name":null,"kind":"rotated","at":"2026-01-02T03:04:05Z",'
        '"actor":"scheduler","detail":{"version":2,"why":["é"]}}'
    )
    busy = RotationOutcome("acme/wa", "busy")
    assert _wire(outcome_out("acme/wa", busy)) == (
        '{"name":"acme/wa","status":"busy","version":null,"previous_version":null,'
        '"expires_at":null,"message":"","health":null}'
    )
    done = RotationOutcome("acme/wa", "rotated", 4, 3, EAST, "renewed", health=Health.OK)
    assert json.loads(_wire(outcome_out("acme/wa", done)))["health"] == "ok"


def test_a_key_answers_as_its_to_json_did() -> None:
    """KeyOut over ApiKey.to_json() changes no byte (the CLI prints the same to_json())."""
    key = ApiKey("k1", Role.READER, ("acme/*",), "hash", "pt_abcd", None, NAIVE, "cli", EAST)
    plain = json.dumps(key.to_json(), ensure_ascii=False, separators=(",", ":"))
    assert _wire(KeyOut.model_validate(key.to_json())) == plain


def test_readiness_reasons_survive_the_model() -> None:
    """`reasons` is not in HealthOut's schema, yet it reaches the client after `checks`."""
    body = {"status": "not_ready", "checks": {"database": False}, "reasons": {"database": "gone"}}
    assert _wire(HealthOut.model_validate(body)) == json.dumps(body, separators=(",", ":"))
