"""Processed event ids: recorded once, looked up in batches, expired by a TTL index."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from taskmesh_common.events.dedupe import ProcessedEvents

pytestmark = pytest.mark.integration


async def test_ids_expire_by_a_ttl_index_on_when_they_were_recorded(db):
    collection = db["processed_events"]
    # A database from before the TTL index: an index on processed_at that expires nothing.
    await collection.create_index([("processed_at", 1)], name="processed_at_1")
    processed = ProcessedEvents(collection, retention=timedelta(days=7))
    await processed.ensure_indexes()
    await processed.ensure_indexes()  # every start of a consumer: harmless
    await processed.record("recent", event_type="task.created", queue="q")
    indexes = {index["name"]: index async for index in await collection.list_indexes()}
    assert set(indexes) == {"_id_", "processed_at_ttl"}
    assert indexes["processed_at_ttl"]["expireAfterSeconds"] == 7 * 24 * 3600
    assert dict(indexes["processed_at_ttl"]["key"]) == {"processed_at": 1}
    assert await processed.seen("recent")
    assert not await processed.seen("never-recorded")


async def test_recording_an_id_twice_is_harmless(db):
    processed = ProcessedEvents(db["processed_events"])
    await processed.record("e1", event_type="task.created", queue="q")
    await processed.record("e1", event_type="task.created", queue="q")
    assert await db["processed_events"].count_documents({}) == 1


async def test_concurrent_lookups_and_records_are_batched_and_each_gets_its_own_answer(db):
    """A consumer with many messages in flight: answers stay exact per event id, and
    lookups and records go in batches (one `$in` on `_id`, one `insert_many`)."""
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
    assert all(list(f) == ["_id"] and list(f["_id"]) == ["$in"] for f in filters), filters
    assert 1 <= len(filters) <= 3, filters
