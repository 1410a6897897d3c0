"""Usage header parsing and the slow-down hint."""

from __future__ import annotations

import json

import pytest

from permatoken.meta import Usage, parse_usage, suggested_delay
from permatoken.meta.usage import parse_app_usage, parse_business_usage


def test_app_usage_max_percentage() -> None:
    usage = parse_usage({"X-App-Usage": '{"call_count":91,"total_cputime":15,"total_time":12}'})
    assert usage.app_percent == 91
    assert usage.app_fields == {"call_count": 91, "total_cputime": 15, "total_time": 12}
    assert usage.business_percent == {}
    assert usage.regain_access_seconds is None


def test_business_usage_per_object_and_minutes_to_seconds() -> None:
    """estimated_time_to_regain_access arrives in minutes and is reported in seconds."""
    raw = json.dumps(
        {
            "102289599326934": [
                {
                    "type": "whatsapp",
                    "call_count": 107,
                    "total_cputime": 1,
                    "total_time": 125,
                    "estimated_time_to_regain_access": 3,
                },
                {"type": "pages", "call_count": 4, "estimated_time_to_regain_access": 0},
            ],
            "101569239400667": [{"type": "whatsapp", "call_count": 20, "total_time": "33"}],
        }
    )
    usage = parse_usage({"x-business-use-case-usage": raw})
    assert usage.business_percent == {"102289599326934": 125, "101569239400667": 33}
    assert usage.regain_access_seconds == 180
    assert usage.max_percent == 125
    assert usage.business[0].type == "whatsapp"


def test_over_100_percent_is_kept() -> None:
    usage = parse_usage({"X-App-Usage": '{"call_count":107,"total_time":125}'})
    assert usage.app_percent == 125


def test_absent_headers_mean_empty_usage() -> None:
    usage = parse_usage({})
    assert usage.is_empty
    assert usage.max_percent is None
    assert parse_usage(None) == Usage()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[1,2]",
        "null",
        '{"call_count":"lots"}',
        '{"call_count":-3}',
        '{"call_count":NaN}',
        '{"call_count":true}',
        "{" * 5000,
    ],
)
def test_app_usage_garbage_is_ignored(raw: str) -> None:
    assert parse_app_usage(raw) == {}


@pytest.mark.parametrize(
    "raw",
    ["", "garbage", "[]", '{"1": 5}', '{"1": ["x", 3]}', '{"1": "str"}'],
)
def test_business_usage_garbage_is_ignored(raw: str) -> None:
    assert parse_business_usage(raw) == ()


def test_business_usage_single_object_instead_of_list() -> None:
    cases = parse_business_usage('{"42": {"type": "whatsapp", "call_count": 50}}')
    assert [(c.object_id, c.percent) for c in cases] == [("42", 50.0)]


def test_zeros_on_errors_are_empty_budget_use() -> None:
    usage = parse_usage({"x-app-usage": '{"call_count":0,"total_cputime":0,"total_time":0}'})
    assert usage.app_percent == 0
    assert suggested_delay(usage) is None


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(10, None), (79.9, None), (80, 1.0), (90, 30.0), (99, 57.0), (100, 300.0), (140, 300.0)],
)
def test_suggested_delay_grows_above_80_percent(percent: float, expected: float | None) -> None:
    usage = parse_usage({"X-App-Usage": json.dumps({"call_count": percent})})
    assert suggested_delay(usage) == expected


def test_suggested_delay_prefers_meta_estimate() -> None:
    raw = json.dumps({"7": [{"call_count": 100, "estimated_time_to_regain_access": 2}]})
    assert suggested_delay(parse_usage({"X-Business-Use-Case-Usage": raw})) == 120


def test_custom_threshold() -> None:
    usage = parse_usage({"X-App-Usage": '{"call_count":60}'})
    assert suggested_delay(usage) is None
    assert suggested_delay(usage, slow_down_at=50) == 12.0
