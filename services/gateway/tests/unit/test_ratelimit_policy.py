"""Parsing `<count>/<unit>` limits and writing the IETF RateLimit headers."""

from __future__ import annotations

import pytest
from gateway_service.config import Settings
from gateway_service.domain.ratelimit import (
    Decision,
    Rate,
    parse_rate,
    policy_header,
    ratelimit_header,
)
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/minute", Rate(600, 60)),
        ("120/minute", Rate(120, 60)),
        ("5/second", Rate(5, 1)),
        ("1000/hour", Rate(1000, 3600)),
        (" 20 / Minutes ", Rate(20, 60)),
    ],
)
def test_limits_parse_as_count_per_window(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text", ["", "600", "600/day", "-1/minute", "0/minute", "x/minute", "1.5/second"]
)
def test_malformed_limits_are_refused_with_the_expected_format(text: str) -> None:
    with pytest.raises(ValueError, match="count"):
        parse_rate(text)


def test_settings_read_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMESH_RATE_LIMIT_USER", "42/second")
    monkeypatch.setenv("TASKMESH_RATE_LIMIT_AUTH", "3/hour")
    settings = Settings()
    assert settings.rate_limit_user == Rate(42, 1)
    assert settings.rate_limit_auth == Rate(3, 3600)
    assert settings.rate_limit_anon == Rate(120, 60)


def test_settings_refuse_a_malformed_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMESH_RATE_LIMIT_ANON", "lots")
    with pytest.raises(ValidationError, match="rate_limit_anon"):
        Settings()


def test_default_limits_match_the_design() -> None:
    settings = Settings()
    assert (str(settings.rate_limit_user), str(settings.rate_limit_anon)) == (
        "600/minute",
        "120/minute",
    )
    assert str(settings.rate_limit_auth) == "20/minute"
    assert settings.rate_limit_fail_open is True


def test_policy_header_names_quota_and_window() -> None:
    assert policy_header("user", Rate(600, 60)) == '"user";q=600;w=60'


def test_ratelimit_header_rounds_the_reset_up_to_whole_seconds() -> None:
    decision = Decision("user", Rate(600, 60), True, 599, 0.1)
    assert ratelimit_header(decision) == '"user";r=599;t=1'


def test_a_denied_decision_says_nothing_is_left_and_when_to_retry() -> None:
    decision = Decision("anon", Rate(120, 60), False, 0, 12.2)
    assert ratelimit_header(decision) == '"anon";r=0;t=13'
    assert decision.retry_after == 13


def test_retry_after_is_never_zero() -> None:
    assert Decision("auth", Rate(20, 60), False, 0, 0.0004).retry_after == 1
