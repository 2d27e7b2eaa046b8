"""Task facts on a real server: version-guarded writes, the indexes the reads use, and a
user's deletion racing with their events."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from analytics_service.adapters.facts import BASE_FACTS, RETIRED_FACT_INDEXES, FactsTable
from analytics_service.adapters.store import ProjectionStore
from analytics_service.domain.model import TaskSnapshot, fact_from_snapshot
from analytics_service.service_layer.handlers import Projector
from pymongo import AsyncMongoClient, IndexModel
from taskmesh_common.events import Envelope
from taskmesh_common.testing.servers import BackingServers

from .conftest import NOW, Analytics, TaskEvents, make_settings, running_analytics, user_deleted

pytestmark = pytest.mark.integration


def fact(task_id: str, owner_id: str, version: int) -> Any:
    return fact_from_snapshot(
        TaskSnapshot(
            task_id=task_id,
            owner_id=owner_id,
            version=version,
            status="done" if version % 2 == 0 else "todo",
            priority="low",
            due_date=None,
            created_at=NOW,
            updated_at=NOW + timedelta(minutes=version),
            completed_at=None,
        )
    )


async def current_facts(analytics: Analytics) -> FactsTable:
    return (await ProjectionStore(analytics.app.state.db).current()).facts


async def test_only_a_newer_version_replaces_a_fact_even_among_racing_writers(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    facts = await current_facts(analytics)
    versions = list(range(1, 21)) * 3
    random.Random(3).shuffle(versions)
    # Twelve writers at once, each with its own batch of versions of the same five tasks.
    writers = [
        [fact(f"{user}-{n}", user, v) for n in range(5) for v in versions[k::12]] for k in range(12)
    ]
    await asyncio.gather(*(facts.put_newest(batch) for batch in writers))

    stored = await facts.collection.find({"owner_id": user}).to_list()
    assert sorted(doc["version"] for doc in stored) == [20] * 5
    await facts.put_newest([fact(f"{user}-0", user, 20), fact(f"{user}-0", user, 7)])
    assert (await facts.collection.find_one({"_id": f"{user}-0"}) or {})["version"] == 20


def uses_an_index(explained: dict[str, Any]) -> bool:
    """An index scan in the plan: MongoDB's `IXSCAN`, or PostgreSQL's index scan nodes
    (DocumentDB), both of which name the index they use."""
    text = json.dumps(explained, default=str)
    return "IXSCAN" in text or "Index Scan" in text


@pytest.mark.parametrize("question", ["summary", "created", "completed"])
async def test_a_users_summary_and_timeline_read_through_an_index(
    analytics: Analytics, new_user: Callable[[], str], question: str
) -> None:
    facts = await current_facts(analytics)
    owners = [new_user() for _ in range(20)]
    await facts.put_newest([fact(f"{o}-{n}", o, 2) for o in owners for n in range(25)])
    # What `FactsTable.group_counts` and `count_by_day` send for one user.
    match: dict[str, Any] = {"owner_id": owners[0]}
    if question != "summary":
        match[f"{question}_day"] = {"$gte": "2026-01-01", "$lte": date.today().isoformat()}
    pipeline = [{"$match": match}, {"$group": {"_id": None, "n": {"$sum": 1}}}]

    explained = await analytics.app.state.db.command(
        "explain",
        {"aggregate": facts.collection.name, "pipeline": pipeline, "cursor": {}},
        verbosity="queryPlanner",
    )

    assert uses_an_index(explained), explained


async def test_a_start_drops_the_overviews_retired_indexes_and_the_overview_still_answers(
    backing_servers: BackingServers,
) -> None:
    settings = make_settings(backing_servers)
    async with AsyncMongoClient(settings.mongo_url) as mongo:
        old = mongo[settings.mongo_db][BASE_FACTS]
        await old.create_indexes(
            [IndexModel([("created_day", 1)]), IndexModel([("changed_at", -1)])]
        )
    async with running_analytics(settings) as analytics:
        await analytics.app.state.indexes_ready.wait()
        facts = analytics.app.state.db[BASE_FACTS]
        names = {index["name"] async for index in await facts.list_indexes()}
        assert names.isdisjoint(RETIRED_FACT_INDEXES), names
        assert "owner_id_1_created_day_1" in names

        user = uuid.uuid4().hex
        task = TaskEvents(user)
        await analytics.applied(task.created())
        overview = await analytics.client.get(
            "/api/v1/analytics/overview", headers=analytics.headers(user, role="admin")
        )
        assert overview.status_code == 200, overview.text


async def test_overdue_and_the_last_change_follow_the_live_facts(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    late = TaskEvents(user, due_date=NOW - timedelta(hours=1))
    late_but_done = TaskEvents(user, due_date=NOW - timedelta(hours=1))
    not_yet = TaskEvents(user, due_date=NOW + timedelta(hours=1))
    no_due = TaskEvents(user)
    removed = TaskEvents(user, due_date=NOW - timedelta(hours=1))
    await analytics.applied(
        late.created(),
        late_but_done.created(),
        late_but_done.completed(),
        not_yet.created(),
        no_due.created(),
        removed.created(),
    )
    assert (await analytics.summary(user))["overdue"] == 2

    await analytics.applied(removed.deleted(9))

    summary = await analytics.summary(user)
    assert summary["overdue"] == 1
    assert summary["total"] == 4
    deleted_at = removed.created_at + timedelta(minutes=9)
    assert datetime.fromisoformat(summary["updated_at"]) == deleted_at.astimezone(UTC)


async def test_a_user_deleted_while_their_events_are_written_keeps_no_statistics(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """The deletion races with batches of the user's events on two replicas."""
    for attempt in range(5):
        user = new_user()
        db = analytics.app.state.db
        replicas = [Projector(ProjectionStore(db)) for _ in range(2)]
        tasks = [TaskEvents(user) for _ in range(8)]
        envelopes = [Envelope.from_entry(e) for t in tasks for e in (t.created(), t.completed())]
        deletion = Envelope.from_entry(user_deleted(user))
        envelopes.insert(random.Random(attempt).randrange(len(envelopes)), deletion)

        await asyncio.gather(*(replicas[n % 2].apply(e) for n, e in enumerate(envelopes)))

        facts = await current_facts(analytics)
        assert await facts.collection.count_documents({"owner_id": user}) == 0
        stored = await db["events"].find({"owner_id": user}).to_list()
        assert [doc["type"] for doc in stored] == ["user.deleted"]
        assert (await analytics.summary(user))["total"] == 0
