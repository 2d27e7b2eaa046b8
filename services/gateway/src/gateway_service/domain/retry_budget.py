"""A retry budget: retries may add at most `ratio` of the recent requests (plus a floor).

Retries multiply load exactly when an upstream is struggling; a budget (as in Finagle and
Envoy) keeps a retry storm from turning a blip into an outage.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["RetryBudget"]


class RetryBudget:
    def __init__(
        self,
        ratio: float,
        *,
        min_per_window: int = 3,
        window_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_per_window = min_per_window
        self.window = window_seconds
        self._clock = clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _trim(self, now: float) -> None:
        for events in (self._requests, self._retries):
            while events and events[0] <= now - self.window:
                events.popleft()

    def record_request(self) -> None:
        now = self._clock()
        self._trim(now)
        self._requests.append(now)

    def try_acquire(self) -> bool:
        """Spend one retry if the budget allows it."""
        now = self._clock()
        self._trim(now)
        allowed = max(self.min_per_window, int(len(self._requests) * self.ratio))
        if len(self._retries) >= allowed:
            return False
        self._retries.append(now)
        return True
