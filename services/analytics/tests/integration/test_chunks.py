"""A user's statistics in chunks of a bounded size (`OwnerStatsTable`), on a real server.

Each test uses chunks of two or three entries, so a handful of tasks spans several chunks.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from analytics_service.adapters.queries import StatisticsReader
from analytics_service.adapters.store import ProjectionStore, chunk_id, encode_entry
from analytics_service.domain.model import entry_key, fact_from_snapshot, stats_entry
from analytics_service.handlers import Projector, _snapshot
from taskmesh_common.events import Envelope, validate_event
from taskmesh_common.events.schemas import TaskState

from .conftest import Analytics, TaskEvents, user_deleted

pytestmark = pytest.mark.integration


def chunked(analytics: Analytics, entries: int) -> tuple[ProjectionStore, Projector]:
    store = ProjectionStore(analytics.app.state.db, chunk_entries=entries)
    return store, Projector(store)


async def apply_in_turn(projector: Projector, *entries: dict[str, Any]) -> None:
    for entry in entries:
        await projector.apply(Envelope.from_entry(entry))


async def stored_chunks(store: ProjectionStore, user: str) -> list[dict[str, Any]]:
    """The user's open document and every sealed chunk, whatever the open number says."""
    stats = (await store.current()).stats
    opened = await stats.collection.find_one({"_id": user})
    sealed = await stats.sealed.find({"_id": {"$regex": f"^{user}/"}}).to_list()
    return [doc for doc in [opened, *sealed] if doc is not None]


def fact_of(entry: dict[str, Any]) -> dict[str, Any]:
    data = validate_event(Envelope.from_entry(entry))
    assert isinstance(data, TaskState)
    return fact_from_snapshot(_snapshot(data))


async def test_entries_spread_over_bounded_chunks_and_count_exactly(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    store, projector = chunked(analytics, 3)
    tasks = [TaskEvents(user) for _ in range(10)]
    await apply_in_turn(projector, *(task.created() for task in tasks))
    # Changes to tasks whose entries were sealed long ago, and to the newest.
    await apply_in_turn(
        projector,
        tasks[0].completed(),
        tasks[1].completed(),
        tasks[1].reopened(),
        tasks[2].deleted(2),
        tasks[9].completed(),
    )

    chunks = await stored_chunks(store, user)
    assert len(chunks) == 4  # three sealed chunks of three and the open one
    assert max(len(chunk["t"]) for chunk in chunks) == 3
    assert sum(len(chunk["t"]) for chunk in chunks) == 10  # each task once, tombstone included
    summary = await analytics.summary(user)
    assert (summary["total"], summary["completed"]) == (9, 2)
    assert summary["by_status"] == {"todo": 7, "in_progress": 0, "done": 2}


async def test_shuffled_redelivered_events_over_chunks_converge(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """Batches of many tasks at once, in any order, twice, with chunks of two."""
    user = new_user()
    store, projector = chunked(analytics, 2)
    tasks = [TaskEvents(user) for _ in range(9)]
    entries = []
    for task in tasks:
        entries += [task.created(), task.completed(), task.reopened(), task.completed(version=4)]
    entries += [tasks[0].deleted(5), tasks[1].reopened(version=5)]
    envelopes = [Envelope.from_entry(e) for e in entries * 2]
    random.Random(5).shuffle(envelopes)
    for start in range(0, len(envelopes), 12):
        await asyncio.gather(*(projector.apply(e) for e in envelopes[start : start + 12]))

    chunks = await stored_chunks(store, user)
    keys = [key for chunk in chunks for key in chunk["t"]]
    assert sorted(keys) == sorted(entry_key(task.task_id) for task in tasks)  # once each
    assert len(chunks) >= 3, [len(chunk["t"]) for chunk in chunks]
    summary = await analytics.summary(user)
    assert (summary["total"], summary["completed"]) == (8, 7)


async def test_a_seal_cut_short_is_finished_and_nothing_counts_twice(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """The sealed copy written, the open document not yet reset: readers ignore the copy,
    and the next batch seals again over it."""
    user = new_user()
    store, projector = chunked(analytics, 3)
    reader = StatisticsReader(store)
    tasks = [TaskEvents(user) for _ in range(4)]
    await apply_in_turn(projector, *(task.created() for task in tasks[:3]))
    stats = (await store.current()).stats
    full = await stats.collection.find_one({"_id": user})
    assert full is not None
    # The copy as a seal leaves it, but stale: it misses an entry the open document has.
    stale = dict(list(full["t"].items())[:2])
    await stats.sealed.insert_one({"_id": chunk_id(user, 0), "t": stale})
    assert (await reader.summary(user, datetime.now(UTC))).total == 3

    await apply_in_turn(projector, tasks[3].created(), tasks[0].completed())

    summary = await reader.summary(user, datetime.now(UTC))
    assert (summary.total, summary.completed) == (4, 1)
    sealed = await stats.sealed.find_one({"_id": chunk_id(user, 0)})
    assert sealed is not None and len(sealed["t"]) == 3


async def test_a_fact_naming_a_sealed_chunk_without_its_entry_is_repaired(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """A crash between a new task's fact and its entry, then its chunk sealed by later
    tasks: the redelivered event writes the entry into the sealed chunk, counted once."""
    user = new_user()
    store, projector = chunked(analytics, 2)
    lost, *later = [TaskEvents(user) for _ in range(4)]
    generation = await store.current()
    await generation.facts.put({**fact_of(lost.created()), "chunk": 0})
    await apply_in_turn(projector, *(task.created() for task in later))

    await apply_in_turn(projector, lost.created(), lost.created(), lost.completed())

    chunks = await stored_chunks(store, user)
    holding = [chunk["_id"] for chunk in chunks if entry_key(lost.task_id) in chunk["t"]]
    assert holding == [chunk_id(user, 0)]
    summary = await analytics.summary(user)
    assert (summary["total"], summary["completed"]) == (4, 1)


async def test_a_document_from_before_chunks_is_read_updated_and_sealed(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """No open number, facts naming no chunk: it is chunk 0, open, and grows no further."""
    user = new_user()
    store, projector = chunked(analytics, 3)
    old = [TaskEvents(user) for _ in range(5)]
    generation = await store.current()
    facts = [fact_of(task.created()) for task in old]
    for fact in facts:
        await generation.facts.put(fact)
    await generation.stats.collection.insert_one(
        {
            "_id": user,
            "t": {entry_key(f["_id"]): encode_entry(stats_entry(f)) for f in facts},
        }
    )
    new = [TaskEvents(user) for _ in range(2)]
    await apply_in_turn(
        projector, old[0].completed(), *(task.created() for task in new), old[1].deleted(2)
    )

    chunks = await stored_chunks(store, user)
    assert sorted(len(chunk["t"]) for chunk in chunks) == [2, 5]  # sealed as it was
    summary = await analytics.summary(user)
    assert (summary["total"], summary["completed"]) == (6, 1)


async def test_user_deleted_removes_every_chunk(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user, other = new_user(), new_user()
    store, projector = chunked(analytics, 2)
    await apply_in_turn(projector, *(TaskEvents(user).created() for _ in range(7)))
    await apply_in_turn(projector, *(TaskEvents(other).created() for _ in range(3)))
    assert len(await stored_chunks(store, user)) == 4

    await apply_in_turn(projector, user_deleted(user))

    assert await stored_chunks(store, user) == []
    assert len(await stored_chunks(store, other)) == 2
    assert (await analytics.summary(other))["total"] == 3
