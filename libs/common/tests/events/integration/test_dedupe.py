"""Processed event ids expire in the application (FerretDB has no TTL indexes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from taskmesh_common.events.dedupe import ProcessedEvents

pytestmark = pytest.mark.integration


async def test_ids_older_than_the_retention_are_forgotten_and_recent_ones_kept(db):
    processed = ProcessedEvents(db["processed_events"], retention=timedelta(days=7))
    await processed.ensure_indexes()
    await processed.record("recent", event_type="task.created", queue="q")
    await db["processed_events"].insert_one(
        {"_id": "old", "processed_at": datetime.now(UTC) - timedelta(days=8)}
    )
    assert await processed.prune() == 1
    assert await processed.seen("recent")
    assert not await processed.seen("old")


async def test_recording_an_id_twice_is_harmless(db):
    processed = ProcessedEvents(db["processed_events"])
    await processed.record("e1", event_type="task.created", queue="q")
    await processed.record("e1", event_type="task.created", queue="q")
    assert await db["processed_events"].count_documents({}) == 1


async def test_concurrent_lookups_and_records_are_batched_and_each_gets_its_own_answer(db):
    """A consumer with many messages in flight: answers stay exact per event id, and the
    server sees a few batched commands instead of one per call."""
    processed = ProcessedEvents(db["processed_events"])
    ids = [f"e{n}" for n in range(60)]
    # Records racing, some of them twice (a redelivery applied by two handlers at once).
    await asyncio.gather(
        *(processed.record(i, event_type="task.created", queue="q") for i in ids[:40] + ids[:5])
    )
    assert await db["processed_events"].count_documents({}) == 40

    commands: list[str] = []
    original_find = db["processed_events"].find

    def counting_find(*args: Any, **kwargs: Any) -> Any:
        commands.append("find")
        return original_find(*args, **kwargs)

    processed.collection.find = counting_find  # type: ignore[method-assign]
    answers = await asyncio.gather(*(processed.seen(i) for i in ids))
    assert answers == [True] * 40 + [False] * 20
    assert 1 <= len(commands) <= 3, commands
