"""An upstream's explicit overload answer: 503 with `Retry-After` (RFC 9110 §15.6.4, §10.2.3).

Such an answer means "busy, come back in N seconds", not "broken": the service is up and
shedding load on purpose. Breakers do not count it, and the client gets it as it is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

__all__ = ["overload_delay", "retry_after_seconds"]


def retry_after_seconds(
    headers: Iterable[tuple[bytes, bytes]], now: float | None = None
) -> float | None:
    """Seconds from `Retry-After` (delay-seconds or an HTTP-date); None if absent or invalid."""
    for name, value in headers:
        if name.lower() != b"retry-after":
            continue
        text = value.decode("latin-1").strip()
        if text.isdigit():
            return float(text)
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def overload_delay(status: int, headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """Seconds an overload answer (503 + Retry-After) asks to wait; None for any other answer."""
    if status != 503:
        return None
    return retry_after_seconds(headers)
