"""The retry budget: retries stay a fraction of recent traffic."""

from __future__ import annotations

from gateway_service.domain.retry_budget import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_upstream_still_gets_the_minimum_retries() -> None:
    budget = RetryBudget(0.2, min_per_window=3, clock=Clock())
    assert [budget.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_retries_are_capped_at_the_ratio_of_recent_requests() -> None:
    budget = RetryBudget(0.2, min_per_window=0, clock=Clock())
    for _ in range(50):
        budget.record_request()
    assert sum(budget.try_acquire() for _ in range(30)) == 10


def test_the_budget_refills_once_the_window_has_passed() -> None:
    clock = Clock()
    budget = RetryBudget(0.0, min_per_window=1, window_seconds=10, clock=clock)
    assert budget.try_acquire()
    assert not budget.try_acquire()
    clock.now = 10.5
    assert budget.try_acquire()
