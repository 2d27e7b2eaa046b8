"""Processed event ids expire in the application (FerretDB has no TTL indexes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
