from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from .conftest import NOW, Analytics, TaskEvents, user_deleted

pytestmark = pytest.mark.integration

TODAY = NOW.date()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


async def test_published_task_events_show_up_in_summary_and_timeline(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    first = TaskEvents(user, priority="high")
    second = TaskEvents(user, priority="low", due_date=NOW - timedelta(hours=1))
    await analytics.applied(
        first.created(),
        second.created(),
        first.completed(completed_at=first.created_at + timedelta(hours=2)),
    )

    summary = await analytics.summary(user)
    assert summary["total"] == 2
    assert summary["by_status"] == {"todo": 1, "in_progress": 0, "done": 1}
    assert summary["by_priority"] == {"low": 1, "medium": 0, "high": 1, "urgent": 0}
    assert summary["completed"] == 1
    assert summary["completion_rate"] == 0.5
    assert summary["avg_completion_seconds"] == 7200.0
    assert summary["overdue"] == 1
    assert summary["updated_at"] is not None

    buckets = await analytics.timeline(user, day(-3), day(0))
    assert [b["date"] for b in buckets] == [day(-3), day(-2), day(-1), day(0)]
    assert [b["created"] for b in buckets] == [0, 2, 0, 0]
    assert sum(b["completed"] for b in buckets) == 1


async def test_the_same_event_delivered_many_times_is_counted_once(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = TaskEvents(user)
    created, completed = task.created(), task.completed()
    # Redelivered copies (same id) and re-published copies (new id, same version).
    await analytics.applied(created, created, completed, completed, task.completed(), created)

    summary = await analytics.summary(user)
    assert summary["total"] == 1
    assert summary["completed"] == 1
    buckets = await analytics.timeline(user, day(-2), day(-2))
    assert buckets == [{"date": day(-2), "created": 1, "completed": 1}]


async def test_an_older_event_after_a_newer_one_changes_nothing(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = TaskEvents(user)
    await analytics.applied(task.completed(version=2))
    await analytics.applied(task.created())

    summary = await analytics.summary(user)
    assert summary["total"] == 1
    assert summary["by_status"]["done"] == 1


async def test_a_deleted_task_leaves_the_counts_even_when_older_events_come_later(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    kept, removed, late = TaskEvents(user), TaskEvents(user), TaskEvents(user)
    await analytics.applied(
        kept.created(), removed.created(), removed.completed(), removed.deleted(3)
    )
    # `late` is deleted before its creation and completion arrive.
    await analytics.applied(late.deleted(3), late.completed(), late.created())

    summary = await analytics.summary(user)
    assert summary["total"] == 1
    assert summary["completed"] == 0
    buckets = await analytics.timeline(user, day(-2), day(-2))
    assert buckets == [{"date": day(-2), "created": 1, "completed": 0}]


async def test_a_reopened_task_is_no_longer_completed(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = TaskEvents(user)
    await analytics.applied(task.created(), task.completed())
    assert (await analytics.summary(user))["completed"] == 1

    await analytics.applied(task.reopened())

    summary = await analytics.summary(user)
    assert summary["completed"] == 0
    assert summary["by_status"]["todo"] == 1
    assert summary["avg_completion_seconds"] is None
    buckets = await analytics.timeline(user, day(-2), day(0))
    assert sum(b["completed"] for b in buckets) == 0


async def test_two_users_numbers_stay_apart(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    alice, bob = new_user(), new_user()
    a1, a2, b1 = TaskEvents(alice), TaskEvents(alice), TaskEvents(bob)
    await analytics.applied(a1.created(), a2.created(), b1.created(), b1.completed())

    assert (await analytics.summary(alice))["total"] == 2
    assert (await analytics.summary(alice))["completed"] == 0
    assert (await analytics.summary(bob))["total"] == 1
    assert (await analytics.summary(bob))["completed"] == 1


async def test_user_deleted_wipes_the_user_and_late_events_do_not_bring_them_back(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    gone, stays = new_user(), new_user()
    task, other = TaskEvents(gone), TaskEvents(stays)
    await analytics.applied(task.created(), task.completed(), other.created())
    assert (await analytics.summary(gone))["total"] == 1

    await analytics.applied(user_deleted(gone))
    await analytics.applied(TaskEvents(gone).created(), task.reopened())

    summary = await analytics.summary(gone)
    assert summary["total"] == 0
    assert summary["updated_at"] is None
    assert all(b["created"] == 0 for b in await analytics.timeline(gone, day(-3), day(0)))
    assert (
        await analytics.app.state.db["events"].count_documents(
            {"owner_id": gone, "type": {"$ne": "user.deleted"}}
        )
        == 0
    )
    assert (await analytics.summary(stays))["total"] == 1


async def test_summary_reflects_a_change_after_it_was_read_once(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    """The cached summary is invalidated by the events that change it."""
    user = new_user()
    task = TaskEvents(user)
    await analytics.applied(task.created())
    assert (await analytics.summary(user))["completed"] == 0
    assert (await analytics.summary(user))["completed"] == 0  # now served from the cache

    await analytics.applied(task.completed())

    assert (await analytics.summary(user))["completed"] == 1
