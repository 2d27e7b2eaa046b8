"""Rate-limit policies: parsing `<count>/<unit>` and the IETF RateLimit header syntax.

Header syntax follows draft-ietf-httpapi-ratelimit-headers-11:
``RateLimit-Policy: "user";q=600;w=60`` and ``RateLimit: "user";r=599;t=1``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Decision", "Rate", "parse_rate", "policy_header", "ratelimit_header"]

_UNITS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """`count` requests per `window_seconds`."""

    count: int
    window_seconds: int

    def __str__(self) -> str:
        unit = {v: k for k, v in _UNITS.items()}[self.window_seconds]
        return f"{self.count}/{unit}"


def parse_rate(text: str) -> Rate:
    """``"600/minute"`` → ``Rate(600, 60)``; anything else is a ValueError naming the format."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"rate limit {text!r} is not <count>/<second|minute|hour>")
    count = int(match.group(1))
    if count < 1:
        raise ValueError(f"rate limit {text!r}: the count must be at least 1")
    return Rate(count, _UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class Decision:
    """What the limiter said about one request under one policy."""

    policy: str
    rate: Rate
    allowed: bool
    remaining: int
    # Seconds until the quota is whole again (allowed) or until the next request may pass (denied).
    reset_seconds: float

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_seconds))


def policy_header(policy: str, rate: Rate) -> str:
    return f'"{policy}";q={rate.count};w={rate.window_seconds}'


def ratelimit_header(decision: Decision) -> str:
    # `t` is a non-negative integer; round up so a client waiting `t` seconds is never early.
    reset = max(0, math.ceil(decision.reset_seconds))
    return f'"{decision.policy}";r={max(0, decision.remaining)};t={reset}'
