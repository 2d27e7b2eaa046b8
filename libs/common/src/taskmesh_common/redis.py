"""Redis clients with bounded waits."""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["create_redis"]


def create_redis(url: str, *, timeout_seconds: float = 1.0) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=15,
        decode_responses=False,
    )
