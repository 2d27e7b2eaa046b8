from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from analytics_service.adapters.store import ProjectionStore
from analytics_service.domain.model import fact_from_snapshot
from analytics_service.service_layer.handlers import Projector, snapshot_of
from taskmesh_common.events import Envelope, validate_event
from taskmesh_common.events.schemas import TaskState

from .conftest import Analytics, TaskEvents, user_deleted

pytestmark = pytest.mark.integration


async def test_a_batch_repairs_a_fact_written_before_a_crash_and_counts_exactly(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """A fact stored without its event (a crash between them), then one batch."""
    user = new_user()
    store = ProjectionStore(analytics.app.state.db)
    first, second = TaskEvents(user), TaskEvents(user)
    completed = Envelope.from_entry(first.completed())
    data = validate_event(completed)
    assert isinstance(data, TaskState)
    facts = (await store.current()).facts
    await facts.put_newest([fact_from_snapshot(snapshot_of(data))])

    created = second.created()
    entries = [first.created(), first.completed(), first.reopened(), created]
    entries += [second.completed(), created]
    projector = Projector(store)
    await asyncio.gather(*(projector.apply(Envelope.from_entry(e)) for e in entries))

    summary = await analytics.summary(user)
    assert summary["total"] == 2
    assert summary["completed"] == 1
    assert summary["by_status"]["todo"] == 1
    stored = await facts.collection.find_one({"_id": first.task_id})
    assert stored is not None and stored["version"] == 3
    assert await store.events.collection.count_documents({"owner_id": user}) == 5


async def test_late_events_of_many_users_at_once_are_checked_together_and_exactly(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """Twelve users' events at once, four of them deleted: the deleted users' events leave
    nothing behind, the others count, and the deleted-user checks share reads."""
    store = ProjectionStore(analytics.app.state.db)
    projector = Projector(store)
    users = [new_user() for _ in range(12)]
    gone = set(users[::3])
    for user in gone:
        await projector.apply(Envelope.from_entry(user_deleted(user)))
    finds = 0
    contains = store.deleted_users.collection.find

    def counted_find(*args: Any, **kwargs: Any) -> Any:
        nonlocal finds
        finds += 1
        return contains(*args, **kwargs)

    store.deleted_users.collection.find = counted_find  # type: ignore[method-assign]
    events = [TaskEvents(user).created() for user in users for _ in range(2)]
    await asyncio.gather(*(projector.apply(Envelope.from_entry(e)) for e in events))

    for user in users:
        summary = await analytics.summary(user)
        assert summary["total"] == (0 if user in gone else 2), user
    assert (
        await store.events.collection.count_documents(
            {"owner_id": {"$in": sorted(gone)}, "type": {"$ne": "user.deleted"}}
        )
        == 0
    )
    assert finds < len(users)
