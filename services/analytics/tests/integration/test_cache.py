"""The summary cache on a real Redis: what an invalidation makes stale, and what it leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from analytics_service.adapters.cache import SummaryCache
from analytics_service.domain.statistics import Summary
from redis.asyncio import Redis
from taskmesh_common.redis import create_redis
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers

from .conftest import NOW

pytestmark = pytest.mark.integration

TTL_SECONDS = 60


def summary(total: int) -> Summary:
    return Summary(
        total=total,
        by_status={"todo": total},
        by_priority={"medium": total},
        completed=0,
        completion_rate=0.0,
        avg_completion_seconds=None,
        overdue=0,
        updated_at=NOW,
    )


@pytest.fixture
async def redis(backing_servers: BackingServers) -> AsyncIterator[Redis]:
    client = create_redis(backing_servers.redis_url)
    yield client
    await client.aclose()


async def cached(cache: SummaryCache, owner_id: str, total: int) -> int:
    """Store a summary under the user's current generation; returns that generation."""
    generation, _ = await cache.get(owner_id)
    await cache.put(owner_id, generation, summary(total))
    return generation


async def test_invalidating_several_users_at_once_stales_each_and_no_one_else(
    redis: Redis,
) -> None:
    cache = SummaryCache(redis, prefix=unique_name("cache") + ":", ttl_seconds=TTL_SECONDS)
    changed, untouched = ["ann", "bob", "cyd"], "dee"
    for n, owner in enumerate([*changed, untouched]):
        await cached(cache, owner, total=n + 1)
        assert (await cache.get(owner))[1] == summary(n + 1)

    await cache.invalidate(*changed, "ann")  # a user twice in one batch: bumped once

    for owner in changed:
        generation, found = await cache.get(owner)
        assert found is None, owner
        assert generation == 1, owner
        ttl = await redis.pttl(f"{cache.prefix}gen:{owner}")
        assert TTL_SECONDS * 2 * 1000 < ttl <= (TTL_SECONDS * 2 + 60) * 1000
    assert (await cache.get(untouched)) == (0, summary(4))


async def test_a_summary_computed_before_an_invalidation_is_never_served_after_it(
    redis: Redis,
) -> None:
    cache = SummaryCache(redis, prefix=unique_name("cache") + ":", ttl_seconds=TTL_SECONDS)
    read_before, _ = await cache.get("ann")
    await cache.invalidate("ann")
    # A reader that computed its summary before the write stores it late, with the old tag.
    await cache.put("ann", read_before, summary(1))
    assert (await cache.get("ann"))[1] is None
    await cached(cache, "ann", total=2)
    assert (await cache.get("ann"))[1] == summary(2)


async def test_invalidating_no_one_asks_redis_nothing(redis: Redis) -> None:
    cache = SummaryCache(redis, prefix=unique_name("cache") + ":", ttl_seconds=TTL_SECONDS)
    await cache.invalidate()
    assert await redis.keys(f"{cache.prefix}*") == []
