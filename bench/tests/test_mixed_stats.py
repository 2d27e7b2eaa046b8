"""The mixed workload's numbers from Locust's samples: what counts as served, refused and
an error, the knee, and the storm's goals."""

from __future__ import annotations

from typing import Any

from bench.mixed_stats import (
    WORK_ROUTES,
    entry,
    holds,
    knee,
    percentile,
    route_table,
    storm_goals,
)


def _sample(
    route: str, status: int, ms: float = 10.0, retry_after: str | None = None
) -> dict[str, Any]:
    return {"route": route, "t": 0.0, "ms": ms, "status": status, "retry_after": retry_after}


def test_a_refusal_needs_retry_after_and_a_timeout_is_an_error() -> None:
    samples = [
        _sample("login", 200, 30),
        _sample("login", 503, 5, "2"),
        _sample("login", 429, 4, "30"),
        _sample("login", 503, 6),  # no Retry-After: nothing a client can act on
        _sample("login", 504, 4000),
        _sample("login", 0, 1000),  # no answer at all
        _sample("register", 409, 20),  # a retried registration the first attempt stored
    ]
    table = route_table(samples)
    login = table["login"]
    assert (login["requests"], login["served"], login["refused"], login["errors"]) == (6, 1, 2, 3)
    assert login["statuses"] == {"0": 1, "200": 1, "429": 1, "503": 2, "504": 1}
    assert login["refused_p99_ms"] == 5
    assert table["register"]["served"] == 1 and table["register"]["errors"] == 0


def test_a_step_holds_only_with_every_route_fast_and_nothing_refused() -> None:
    fast = [_sample("list", 200, 50), _sample("get", 200, 20)]
    assert holds(route_table(fast))
    # get's p95 past 200 ms: most of its answers took 300 ms.
    assert not holds(route_table([*fast, *[_sample("get", 200, 300)] * 20]))
    assert not holds(route_table([*fast, _sample("login", 503, 3, "1")]))
    assert not holds(route_table([]))
    # A slow login fails the step, not the signed-in routes' own judgement.
    slow_entry = route_table([*fast, _sample("login", 200, 900)])
    assert not holds(slow_entry) and holds(slow_entry, WORK_ROUTES)


def test_the_knee_is_the_last_step_before_the_first_that_did_not_hold() -> None:
    steps = [
        {"users": 50, "rps": 40.0, "holds": True},
        {"users": 25, "rps": 20.0, "holds": True},
        {"users": 100, "rps": 70.0, "holds": False},
        {"users": 150, "rps": 90.0, "holds": True},  # after a miss: not counted
    ]
    assert knee(steps) == {"users": 50, "rps": 40.0}
    assert knee([{"users": 25, "rps": 20.0, "holds": False}]) is None


def test_percentile_is_the_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([], 50) is None


def _storm(samples: list[dict[str, Any]], breakers: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "storm": {
            "users": 2,
            "routes": route_table(samples),
            "entry": entry(samples, 2),
            "breakers_seen": breakers,
        }
    }


def test_the_storm_goals_see_a_timeout_an_opened_breaker_and_a_user_left_out() -> None:
    closed = {"auth": ["closed"], "tasks": ["closed"]}
    good = [
        _sample("login", 200, 30),
        _sample("login", 503, 3, "1"),
        _sample("refresh", 200, 20),
        {"route": "entered", "t": 0.0, "ms": 2500.0},
        {"route": "entered", "t": 0.0, "ms": 1500.0},
    ]
    assert all(met for _, met, _ in storm_goals(_storm(good, closed)))

    bad = [*good[:3], _sample("login", 504, 4000), good[3]]
    opened = {"auth": ["closed"], "auth-credentials": ["closed", "open"]}
    verdicts = {goal: met for goal, met, _ in storm_goals(_storm(bad, opened))}
    assert not verdicts["storm: 0 answers of 504"]
    assert not verdicts["storm: no breaker of the gateway opens"]
    assert not verdicts["storm: every login served or refused in < 100 ms (p99)"]
    assert not verdicts["storm: clients honouring Retry-After all in within 60 s"]
    # Breakers that were never read are no proof that none opened.
    unread = {goal: met for goal, met, _ in storm_goals(_storm(good, {}))}
    assert not unread["storm: no breaker of the gateway opens"]
