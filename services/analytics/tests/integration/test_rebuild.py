from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from analytics_service.adapters.store import ProjectionStore
from analytics_service.service_layer.handlers import Projector
from analytics_service.service_layer.rebuild import rebuild_projections
from taskmesh_common.events import Envelope

from .conftest import NOW, Analytics, TaskEvents, user_deleted

pytestmark = pytest.mark.integration


async def numbers(analytics: Analytics, users: list[str]) -> dict[str, Any]:
    start = (NOW - timedelta(days=10)).date().isoformat()
    end = NOW.date().isoformat()
    result: dict[str, Any] = {}
    for user in users:
        result[user] = {
            "summary": await analytics.summary(user),
            "timeline": await analytics.timeline(user, start, end),
        }
    response = await analytics.client.get(
        "/api/v1/analytics/overview", headers=analytics.headers("admin", role="admin")
    )
    result["overview"] = response.json()
    return result


async def test_rebuild_from_stored_events_gives_the_live_numbers(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    users = [new_user() for _ in range(3)]
    gone = new_user()
    entries = []
    for n, user in enumerate([*users, gone]):
        for k in range(4):
            task = TaskEvents(
                user,
                created_at=NOW - timedelta(days=k + n, hours=3),
                priority=("low", "high")[k % 2],
                due_date=NOW + timedelta(days=(-1) ** k),
            )
            history = [task.created(), task.completed()]
            if k == 1:
                history.append(task.reopened())
            if k == 2:
                history.append(task.deleted(3))
            entries += history
    # Out of order and with duplicates, as a broker may deliver them.
    random.Random(7).shuffle(entries)
    await analytics.applied(*entries, *entries[:5], user_deleted(gone))
    live = await numbers(analytics, [*users, gone])
    assert live[users[0]]["summary"]["total"] == 3

    report = await rebuild_projections(analytics.app.state.db, settle_seconds=1.2)
    await asyncio.sleep(1.2)  # the app's cached pointer to the facts follows the switch

    # Every stored event of the remaining users, plus the user.deleted; none of the gone user's.
    kept = [e for e in entries if e["data"]["owner_id"] != gone]
    assert report.replayed == len(kept) + 1
    assert report.previous_generation == ""
    rebuilt = await numbers(analytics, [*users, gone])
    assert rebuilt == live
    collections = await analytics.app.state.db.list_collection_names()
    assert f"task_facts{report.generation}" in collections
    assert "task_facts" not in collections

    # The service keeps projecting into the rebuilt generation.
    later = TaskEvents(users[0])
    await analytics.applied(later.created())
    assert (await analytics.summary(users[0]))["total"] == 4


async def test_concurrent_replicas_applying_shuffled_events_converge(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """Two replicas race on one user's events in any order: every task ends at its newest."""
    user = new_user()
    db = analytics.app.state.db
    replicas = [Projector(ProjectionStore(db)) for _ in range(2)]
    tasks = [TaskEvents(user) for _ in range(6)]
    entries = []
    for task in tasks:
        entries += [task.created(), task.completed(), task.reopened(), task.completed(version=4)]
    entries += [tasks[0].deleted(5), tasks[1].reopened(version=5)]
    envelopes = [Envelope.from_entry(e) for e in entries * 2]
    random.Random(11).shuffle(envelopes)

    await asyncio.gather(*(replicas[n % 2].apply(envelope) for n, envelope in enumerate(envelopes)))

    summary = await analytics.summary(user)
    assert summary["total"] == 5
    assert summary["completed"] == 4
    assert summary["by_status"]["todo"] == 1
