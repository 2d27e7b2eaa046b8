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
    """A consumer with many messages in flight: answers stay exact per event id, records go
    in batches, and every lookup is by `_id` alone (the one filter FerretDB answers from an
    index; the collection holds a week of ids)."""
    processed = ProcessedEvents(db["processed_events"])
    ids = [f"e{n}" for n in range(60)]
    inserts: list[int] = []
    original_insert_many = db["processed_events"].insert_many

    def counting_insert_many(documents: Any, *args: Any, **kwargs: Any) -> Any:
        inserts.append(len(documents))
        return original_insert_many(documents, *args, **kwargs)

    processed.collection.insert_many = counting_insert_many  # type: ignore[method-assign]
    # Records racing, some of them twice (a redelivery applied by two handlers at once).
    await asyncio.gather(
        *(processed.record(i, event_type="task.created", queue="q") for i in ids[:40] + ids[:5])
    )
    assert await db["processed_events"].count_documents({}) == 40
    assert 1 <= len(inserts) <= 3, inserts

    filters: list[Any] = []
    original_find = db["processed_events"].find

    def counting_find(*args: Any, **kwargs: Any) -> Any:
        filters.append(args[0] if args else kwargs.get("filter"))
        return original_find(*args, **kwargs)

    processed.collection.find = counting_find  # type: ignore[method-assign]
    answers = await asyncio.gather(*(processed.seen(i) for i in ids + ids[:3]))
    assert answers == [True] * 40 + [False] * 20 + [True] * 3
    assert all(list(f) == ["_id"] and isinstance(f["_id"], str) for f in filters), filters
    assert len(filters) <= len(ids) + 3
