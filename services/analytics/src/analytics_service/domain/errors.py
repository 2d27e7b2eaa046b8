"""The analytics service's errors, free of HTTP (mapped once at the edge).

AnalyticsError
 └── InvalidDateRange      a timeline range that is reversed or too long
"""

from __future__ import annotations

__all__ = ["AnalyticsError", "InvalidDateRange"]


class AnalyticsError(Exception):
    """Base of every error the analytics domain raises."""


class InvalidDateRange(AnalyticsError):
    pass
