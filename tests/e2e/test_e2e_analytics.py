"""Statistics through the gateway: exact, fresh within seconds, per user, gone with the account."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

SUMMARY = "/api/v1/analytics/summary"
TIMELINE = "/api/v1/analytics/timeline"


async def _get(api, user, path: str, **params: Any) -> dict[str, Any]:
    response = await api.client.get(path, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _day_of(timestamp: str) -> str:
    return (
        datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC).date().isoformat()
    )


async def test_a_users_writes_show_exactly_in_summary_and_timeline(api, poll):
    user = await api.new_user()
    past = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    overdue = await api.create_task(user, title="late", priority="urgent", due_date=past)
    started = await api.create_task(user, title="started", priority="high")
    finished = await api.create_task(user, title="finished", priority="low")
    gone = await api.create_task(user, title="gone", priority="low")
    await api.patch_task(user, started["id"], status="in_progress")
    done = await api.patch_task(user, finished["id"], status="done")
    assert (
        await api.client.delete(f"/api/v1/tasks/{gone['id']}", headers=user.headers)
    ).status_code == 204

    expected = {
        "total": 3,
        "by_status": {"todo": 1, "in_progress": 1, "done": 1},
        "by_priority": {"low": 1, "medium": 0, "high": 1, "urgent": 1},
        "completed": 1,
        "overdue": 1,
    }

    def matches(summary: dict[str, Any]) -> bool:
        return {k: summary[k] for k in expected} == expected

    summary = await poll(lambda: _get(api, user, SUMMARY), matches, timeout=10)
    assert abs(summary["completion_rate"] - 1 / 3) < 1e-3  # rounded by the service
    took = (
        datetime.fromisoformat(done["completed_at"].replace("Z", "+00:00"))
        - datetime.fromisoformat(finished["created_at"].replace("Z", "+00:00"))
    ).total_seconds()
    assert abs(summary["avg_completion_seconds"] - took) < 0.01
    assert overdue["id"]

    created_day = _day_of(finished["created_at"])
    completed_day = _day_of(done["completed_at"])
    start = (date.fromisoformat(created_day) - timedelta(days=2)).isoformat()
    timeline = await _get(api, user, TIMELINE, **{"from": start, "to": completed_day})
    buckets = {b["date"]: b for b in timeline["buckets"]}
    assert len(buckets) == (date.fromisoformat(completed_day) - date.fromisoformat(start)).days + 1
    assert sum(b["created"] for b in buckets.values()) == 3, "the deleted task left the counts"
    assert buckets[created_day]["created"] >= 1
    assert sum(b["completed"] for b in buckets.values()) == 1
    assert buckets[completed_day]["completed"] == 1
    assert buckets[start] == {"date": start, "created": 0, "completed": 0}


async def test_a_reopened_task_no_longer_counts_as_completed(api, poll):
    user = await api.new_user()
    task = await api.create_task(user)
    await api.patch_task(user, task["id"], status="done")
    await poll(lambda: _get(api, user, SUMMARY), lambda s: s["completed"] == 1)
    await api.patch_task(user, task["id"], status="todo")
    summary = await poll(lambda: _get(api, user, SUMMARY), lambda s: s["completed"] == 0)
    assert summary["by_status"]["todo"] == 1 and summary["total"] == 1


async def test_another_users_numbers_stay_apart(api, poll):
    alice, bob = await api.new_user(), await api.new_user()
    for _ in range(3):
        await api.create_task(alice, priority="urgent")
    await api.create_task(bob, priority="low")
    await poll(lambda: _get(api, alice, SUMMARY), lambda s: s["total"] == 3)
    bobs = await poll(lambda: _get(api, bob, SUMMARY), lambda s: s["total"] == 1)
    assert bobs["by_priority"] == {"low": 1, "medium": 0, "high": 0, "urgent": 0}
    today = datetime.now(UTC).date().isoformat()
    timeline = await _get(api, bob, TIMELINE, **{"from": today, "to": today})
    assert sum(b["created"] for b in timeline["buckets"]) <= 1


async def test_bad_timeline_ranges_are_422_problems(api, problem):
    user = await api.new_user()
    for params in (
        {"from": "2030-01-10", "to": "2030-01-01"},
        {"from": "2020-01-01", "to": "2030-01-01"},
        {"from": "yesterday", "to": "2030-01-01"},
        {"from": "2030-02-30"},
    ):
        response = await api.client.get(TIMELINE, params=params, headers=user.headers)
        problem(response, 422)


async def test_statistics_and_tasks_are_gone_after_the_account_is_deleted(api, poll):
    user = await api.new_user()
    await api.create_task(user, priority="high")
    done = await api.create_task(user)
    await api.patch_task(user, done["id"], status="done")
    await poll(lambda: _get(api, user, SUMMARY), lambda s: s["total"] == 2 and s["completed"] == 1)

    deleted = await api.client.request(
        "DELETE", "/api/v1/auth/me", json={"password": user.password}, headers=user.headers
    )
    assert deleted.status_code == 204
    # The deletion revoked the token: nothing of the account is reachable with it any more.
    for path in (SUMMARY, "/api/v1/tasks"):
        assert (await api.client.get(path, headers=user.headers)).status_code == 401
    # An admin sees the tasks go; the statistics go with the same event (the analytics
    # integration tests read them after user.deleted, no API shows a deleted user's).
    admin = await api.admin()
    tasks = await poll(
        lambda: _get(api, admin, "/api/v1/tasks", owner_id=user.id),
        lambda page: page["items"] == [],
        timeout=10,
    )
    assert tasks["next_cursor"] is None


async def test_admin_overview_counts_across_users_and_users_may_not_see_it(api, problem, poll):
    admin = await api.admin()
    user = await api.new_user()
    problem(await api.client.get("/api/v1/analytics/overview", headers=user.headers), 403)
    await api.create_task(user)
    # Other tests' writes land at the same time: only a lower bound is certain.
    overview = await poll(
        lambda: _get(api, admin, "/api/v1/analytics/overview"),
        lambda o: o["totals"]["total"] >= 1 and o["users_with_tasks"] >= 1,
    )
    assert len(overview["last_30_days"]) >= 1
