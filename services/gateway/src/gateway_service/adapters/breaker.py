"""A pybreaker circuit breaker per upstream route group, usable around awaited calls.

pybreaker has no asyncio support (decorating an `async def` counts nothing), but its
`calling()` context manager sees exceptions raised inside the block, awaits included.
State is per gateway process, as in Envoy: pybreaker's Redis storage is synchronous and
would block the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pybreaker

from gateway_service.domain.errors import UpstreamCircuitOpen
from gateway_service.metrics import BREAKER_STATE

__all__ = ["UpstreamBreaker"]

_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


class _StateListener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: UpstreamBreaker) -> None:
        self.owner = owner

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        del cb, old_state
        if new_state.name == "open":
            self.owner.opened_at = time.monotonic()
        BREAKER_STATE.labels(self.owner.name).set(_STATE_VALUES.get(new_state.name, 0))


def _not_a_failure(exc: BaseException) -> bool:
    # A cancelled request (client went away) says nothing about the upstream's health.
    return not isinstance(exc, Exception)


class UpstreamBreaker:
    def __init__(
        self, name: str, *, fail_max: int, reset_timeout: float, upstream: str | None = None
    ) -> None:
        # `name` is the route group (metric label, `/readyz` key); `upstream` the service.
        self.name = name
        self.upstream = upstream or name
        self.reset_timeout = reset_timeout
        self.opened_at = 0.0
        self._probe_in_flight = False
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            exclude=[_not_a_failure],
            listeners=[_StateListener(self)],
            # Re-raise the real error on the tripping call, so a 5xx still reaches the client.
            throw_new_error_on_trip=False,
        )
        BREAKER_STATE.labels(name).set(0)

    @property
    def state(self) -> str:
        state: str = self._breaker.current_state
        return state

    @property
    def failures(self) -> int:
        count: int = self._breaker.fail_counter
        return count

    def retry_after(self) -> int:
        """Whole seconds until the breaker lets a probe through (at least 1)."""
        left = self.opened_at + self.reset_timeout - time.monotonic()
        return max(1, math.ceil(left))

    def details(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"state": self.state, "failures": self.failures}
        if self.state == "open":
            detail["retry_after"] = self.retry_after()
        return detail

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Count what the block raises; raise UpstreamCircuitOpen at once while open.

        pybreaker's half-open state lets every concurrent call through; with asyncio that
        would be a stampede on a recovering upstream, so only one probe is let through.
        """
        state = self.state
        due = state == "open" and time.monotonic() >= self.opened_at + self.reset_timeout
        if state == "open" and not due:
            raise UpstreamCircuitOpen(self.upstream, self.retry_after())
        probe = state != "closed"
        if probe:
            if self._probe_in_flight:
                raise UpstreamCircuitOpen(self.upstream, 1)
            self._probe_in_flight = True
        try:
            with self._breaker.calling():
                yield
        except pybreaker.CircuitBreakerError:
            raise UpstreamCircuitOpen(self.upstream, self.retry_after()) from None
        finally:
            if probe:
                self._probe_in_flight = False
